"""Bootstrap, users, teams and authorization, through the real server over HTTP."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests._support.server import ServerProcess, free_port
from tests.server._batches import history, ingest, run_start

FORBIDDEN = "entity '{}' not found or you are not a member"


def _new_user(admin: httpx.Client, name: str, is_admin: bool = False) -> str:
    response = admin.post("/admin/users", json={"name": name, "admin": is_admin})
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    assert re.fullmatch(r"trk_[A-Za-z0-9_-]{40}", key)
    return key


def test_bootstrap_admin_and_viewer(server: ServerProcess, admin: httpx.Client) -> None:
    version = importlib.metadata.version("trackd")
    database = "sqlite" if server.db is None else "postgresql"
    assert admin.get("/viewer").json() == {
        "user": "admin",
        "admin": True,
        "entities": ["admin"],
        "default_entity": "admin",
        "server": {"version": version, "data_dir": str(server.data_dir), "database": database},
    }
    # another user learns the version, not where the data lives
    bob = _new_user(admin, "bob")
    seen = httpx.get(server.url + "/api/v1/viewer", headers={"Authorization": f"Bearer {bob}"})
    assert seen.json()["server"] == {"version": version}
    assert httpx.get(server.url + "/healthz").json()["ok"] is True
    assert "/api/v1/ingest" in httpx.get(server.url + "/openapi.json").json()["paths"]


def test_random_admin_key_is_printed_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "trackd.server", "--data-dir", str(data), "--create-team", "t"]
    first = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"}
    )
    assert first.returncode == 0, first.stderr
    match = re.search(r"trackd: admin API key \(shown once\): (trk_\S{40})$", first.stdout, re.M)
    assert match, first.stdout
    cmd[-2:] = ["--create-user", "carol"]
    second = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"}
    )
    assert "admin API key" not in second.stdout
    assert re.search(r"API key for 'carol' \(shown once\): trk_\S{40}", second.stdout)
    assert match.group(1) not in (data / "trackd.db").read_bytes().decode("latin-1")


def test_missing_and_wrong_keys_are_401(server: ServerProcess) -> None:
    no_key = httpx.get(server.url + "/api/v1/viewer")
    assert no_key.status_code == 401
    error = no_key.json()["error"]
    assert error["code"] == "unauthorized"
    assert "--create-key" in error["message"] and "Bearer" in error["message"]
    with server.client("trk_" + "x" * 40) as wrong:
        response = wrong.get("/viewer")
    assert response.status_code == 401
    assert "not valid" in response.json()["error"]["message"]


def test_users_see_only_their_entities(server: ServerProcess, admin: httpx.Client) -> None:
    alice, bob = _new_user(admin, "alice"), _new_user(admin, "bob")
    with server.client(alice) as a, server.client(bob) as b:
        assert ingest(a, "r1", [run_start("r1")]).status_code == 200
        for entity in ("alice", "nosuch"):
            response = b.get(f"/entities/{entity}/projects")
            assert response.status_code == 403
            assert response.json()["error"]["message"] == FORBIDDEN.format(entity)
        response = ingest(b, "r2", [run_start("r2")], entity="alice")
        assert response.status_code == 403
        assert response.json()["error"]["message"] == FORBIDDEN.format("alice")
        assert b.get("/runs/alice/proj/r1").status_code == 403
        assert b.post("/admin/teams", json={"name": "x"}).status_code == 403
        assert [e["name"] for e in a.get("/entities").json()["entities"]] == ["alice"]


def test_team_members_write_team_projects(server: ServerProcess, admin: httpx.Client) -> None:
    alice, bob = _new_user(admin, "alice"), _new_user(admin, "bob")
    assert admin.post("/admin/teams", json={"name": "vision"}).status_code == 201
    assert admin.post("/admin/teams/vision/members", json={"user": "alice"}).status_code == 200
    with server.client(alice) as a, server.client(bob) as b:
        records = [run_start("t1"), history("t1", 2, 0, {"loss": 1.0})]
        assert ingest(a, "t1", records, entity="vision").status_code == 200
        assert a.get("/runs/vision/proj/t1").json()["last_step"] == 0
        assert a.get("/viewer").json()["entities"] == ["alice", "vision"]
        assert ingest(b, "t2", [run_start("t2")], entity="vision").status_code == 403
        assert b.get("/entities/vision/projects").status_code == 403
        admin.delete("/admin/teams/vision/members/alice").raise_for_status()
        assert a.get("/runs/vision/proj/t1").status_code == 403


def test_admin_errors_are_clear(admin: httpx.Client) -> None:
    _new_user(admin, "alice")
    taken = admin.post("/admin/teams", json={"name": "alice"})
    assert taken.status_code == 409
    assert "'alice' is already taken" in taken.json()["error"]["message"]
    bad = admin.post("/admin/users", json={"name": "../x"})
    assert bad.status_code == 400 and "'../x' is not valid" in bad.json()["error"]["message"]
    missing = admin.post("/admin/teams/nope/members", json={"user": "alice"})
    assert missing.status_code == 404 and "team 'nope' not found" in missing.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_admin_commands(server: ServerProcess) -> None:
    base = [sys.executable, "-m", "trackd.server", "--data-dir", str(server.data_dir)]

    def run(*args: str) -> str:
        done = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    key = run("--create-user", "dave").split(": ")[-1].strip()
    run("--create-team", "nlp")
    run("--add-member", "nlp", "dave")
    with server.client(key) as dave:
        assert dave.get("/viewer").json()["entities"] == ["dave", "nlp"]
        second = run("--create-key", "dave").split(": ")[-1].strip()
        run("--remove-member", "nlp", "dave")
        assert dave.get("/viewer").json()["entities"] == ["dave"]
    with server.client(second) as dave2:
        assert dave2.get("/viewer").json()["user"] == "dave"
    fail = subprocess.run(
        base + ["--create-key", "nobody"], capture_output=True, text=True, timeout=60
    )
    assert fail.returncode == 2 and "user 'nobody' not found" in fail.stderr


def test_names_with_a_trailing_newline_are_refused(admin: httpx.Client) -> None:
    """``re.match`` with ``$`` accepts ``'bob\\n'``, which looks just like ``'bob'``."""
    assert admin.post("/admin/users", json={"name": "bob"}).status_code == 201
    attempts = {
        "user": admin.post("/admin/users", json={"name": "bob\n"}),
        "team": admin.post("/admin/teams", json={"name": "T\n"}),
        "project": admin.post("/init", json={"project": "p\n", "run_id": "r1"}),
        "run_id": admin.post("/init", json={"project": "p", "run_id": "r1\n"}),
    }
    for what, response in attempts.items():
        assert response.status_code == 400, (what, response.text)
        assert "is not valid" in response.json()["error"]["message"]
    batch = ingest(admin, "r1", [run_start("r1")], project="p\n")
    assert batch.status_code == 422, batch.text
    users = [e["name"] for e in admin.get("/entities").json()["entities"]]
    assert users == ["admin"]


def test_a_given_admin_key_is_never_printed(server: ServerProcess) -> None:
    log = server.log_tail(1000)
    assert server.admin_key not in log
    assert "admin user 'admin' created with the key from TRACKD_ADMIN_KEY" in log


def test_a_failed_database_connection_hides_the_password(tmp_path: Path) -> None:
    port = free_port()
    for url, message in (
        (f"postgresql://u:secretpw@127.0.0.1:{port}/x", "cannot connect to database"),
        ("mysql://u:secretpw@127.0.0.1/x", "is not a supported database URL"),
    ):
        cmd = [sys.executable, "-m", "trackd.server", "--data-dir", str(tmp_path), "--db", url]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"}
        )
        output = done.stdout + done.stderr
        assert done.returncode == 2, output
        assert "secretpw" not in output
        assert message in output and "u:***@127.0.0.1" in output, output
