"""API keys: listed, created with an expiry, revoked; users removed (API and command line)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests._support.server import ServerProcess
from tests.server._batches import ingest, run_start


def _new_user(admin: httpx.Client, name: str) -> str:
    response = admin.post("/admin/users", json={"name": name})
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


def _viewer(server: ServerProcess, key: str) -> httpx.Response:
    with server.client(key) as client:
        return client.get("/viewer")


def test_a_user_lists_creates_and_revokes_their_keys(
    server: ServerProcess, admin: httpx.Client
) -> None:
    first = _new_user(admin, "alice")
    with server.client(first) as alice:
        [listed] = alice.get("/keys").json()["keys"]
        assert listed["prefix"] == first[:12] and listed["current"] is True
        assert listed["state"] == "active" and listed["expires_at"] is None
        assert first not in str(listed) and "hash" not in str(listed)
        made = alice.post("/keys", json={"expires_in_days": 1})
        assert made.status_code == 201, made.text
        second, prefix = made.json()["api_key"], made.json()["prefix"]
        assert prefix == second[:12] and second != first
        assert abs(made.json()["expires_at"] - (time.time() + 86400)) < 60
        assert _viewer(server, second).json()["user"] == "alice"
        revoked = alice.delete(f"/keys/{prefix}")
        assert revoked.status_code == 200, revoked.text
        refused = _viewer(server, second)
        assert refused.status_code == 401
        assert f"the API key {prefix}... was revoked" in refused.json()["error"]["message"]
        states = {k["prefix"]: k["state"] for k in alice.get("/keys").json()["keys"]}
        assert states == {first[:12]: "active", prefix: "revoked"}
        admin_prefix = server.admin_key[:12]
        assert alice.delete(f"/keys/{admin_prefix}").status_code == 404
        assert alice.get(f"/admin/users/{'admin'}/keys").status_code == 403
    assert _viewer(server, server.admin_key).status_code == 200
    assert _viewer(server, first).status_code == 200


def test_an_expired_key_is_refused(server: ServerProcess, admin: httpx.Client) -> None:
    _new_user(admin, "bob")
    soon = admin.post("/admin/users/bob/keys", json={"expires_at": time.time() + 1.5})
    assert soon.status_code == 201, soon.text
    key = soon.json()["api_key"]
    assert _viewer(server, key).status_code == 200
    time.sleep(2)
    refused = _viewer(server, key)
    assert refused.status_code == 401
    assert f"the API key {key[:12]}... expired" in refused.json()["error"]["message"]
    listed = admin.get("/admin/users/bob/keys").json()["keys"]
    assert {k["prefix"]: k["state"] for k in listed}[key[:12]] == "expired"
    for bad in ({"expires_at": time.time() - 10}, {"expires_in_days": -1}, {"expires_in_days": 0}):
        response = admin.post("/admin/users/bob/keys", json=bad)
        assert response.status_code in (400, 422), (bad, response.text)


def test_admin_revokes_any_key_and_removes_users(
    server: ServerProcess, admin: httpx.Client
) -> None:
    carol = _new_user(admin, "carol")
    with server.client(carol) as client:
        ingest(client, "c1", [run_start("c1")]).raise_for_status()
    extra = admin.post("/admin/users/carol/keys").json()
    assert extra["prefix"] == extra["api_key"][:12]
    assert admin.delete(f"/admin/keys/{extra['prefix']}").status_code == 200
    assert "revoked" in _viewer(server, extra["api_key"]).text
    assert admin.delete("/admin/keys/trk_nosuchkey").status_code == 404
    removed = admin.delete("/admin/users/carol")
    assert removed.status_code == 200, removed.text
    refused = _viewer(server, carol)
    assert refused.status_code == 401 and "not valid" in refused.text
    assert admin.get("/admin/users/carol/keys").status_code == 404
    assert admin.delete("/admin/users/carol").status_code == 404
    last_admin = admin.delete("/admin/users/admin")
    assert last_admin.status_code == 409
    assert "only admin" in last_admin.json()["error"]["message"]
    assert _viewer(server, server.admin_key).status_code == 200


def _cli(server: ServerProcess, *args: str) -> str:
    cmd = [*server.command(), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env(server))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _env(server: ServerProcess) -> dict[str, str]:
    return {"PATH": "/usr/bin", "TRACKD_ADMIN_KEY": server.admin_key}


@pytest.mark.timeout(120)
def test_key_commands_on_the_command_line(tmp_path: Path, db_url: str | None) -> None:
    server = ServerProcess(tmp_path / "server", db=db_url)
    shown = _cli(server, "--create-user", "dave")
    pattern = r"prefix (\S+), expires (.+)\n.*API key for 'dave' \(shown once\): (trk_\S{40})\n"
    first = re.search(pattern, shown)
    assert first and first.group(1) == first.group(3)[:12] and first.group(2) == "never", shown
    shown = _cli(server, "--create-key", "dave", "--expires-in", "2")
    second = re.search(pattern, shown)
    assert second and second.group(2).endswith(" UTC"), shown
    shown = _cli(server, "--create-key", "dave", "--expires-at", "2099-01-01")
    third = re.search(pattern, shown)
    assert third and third.group(2) == "2099-01-01 00:00 UTC", shown
    listing = _cli(server, "--list-keys", "dave")
    for match in (first, second, third):
        assert match.group(1) in listing
    assert listing.count("active") == 3
    assert "revoked" in _cli(server, "--revoke-key", second.group(1))
    assert re.search(rf"{second.group(1)}\s.*revoked", _cli(server, "--list-keys", "dave"))
    server.start()
    try:
        assert _viewer(server, first.group(3)).status_code == 200
        assert "was revoked" in _viewer(server, second.group(3)).text
        assert _viewer(server, third.group(3)).status_code == 200
        server.stop()
        assert "removed user 'dave'" in _cli(server, "--remove-user", "dave")
        server.start()
        assert _viewer(server, first.group(3)).status_code == 401
    finally:
        server.stop()
    bad = subprocess.run(
        [*server.command(), "--create-key", "admin", "--expires-in", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(server),
    )
    assert bad.returncode == 2 and "--expires-in" in bad.stderr, bad.stderr
