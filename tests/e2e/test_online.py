"""Online runs end to end: training process -> daemon -> HTTP -> server -> database."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import pytest
import trackd
from trackd.errors import AuthError, UsageError

from tests._support.procs import run_script, wait_for
from tests._support.server import ServerProcess, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "server") as srv:
        yield srv


def _online(monkeypatch: pytest.MonkeyPatch, server: ServerProcess, key: str | None = None) -> None:
    monkeypatch.setenv("TRACKD_BASE_URL", server.url)
    monkeypatch.setenv("TRACKD_API_KEY", key or server.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")


def _get(server: ServerProcess, path: str, key: str | None = None) -> object:
    response = httpx.get(
        f"{server.url}/api/v1{path}",
        headers={
            "Authorization": f"Bearer {key or server.admin_key}",
            "Accept": "application/msgpack",
        },
        timeout=30,
        trust_env=False,
    )
    response.raise_for_status()
    return msgpack.unpackb(response.content, raw=False, strict_map_key=False)


def _new_user(server: ServerProcess, name: str) -> str:
    with server.client() as client:
        answer = client.post("/admin/users", json={"name": name})
        answer.raise_for_status()
        return str(answer.json()["api_key"])


def test_online_run_lands_on_server(monkeypatch: pytest.MonkeyPatch, server: ServerProcess) -> None:
    _online(monkeypatch, server)
    run = trackd.init(project="mnist", config={"lr": 0.1}, tags=["a"], group="g")
    for i in range(5_000):
        run.log({"i": i, "loss": 1.0 / (i + 1), "bad": math.nan if i == 7 else 0.0})
    run.summary["best"] = 0.5
    run.finish()
    remote = _get(server, f"/runs/admin/mnist/{run.id}")
    assert isinstance(remote, dict)
    assert remote["state"] == "finished" and remote["config"] == {"lr": 0.1}
    assert remote["summary"]["best"] == 0.5 and remote["summary"]["i"] == 4999
    assert remote["group"] == "g" and remote["tags"] == ["a"]
    rows = _get(server, f"/runs/admin/mnist/{run.id}/history")
    assert isinstance(rows, list)
    assert [r["i"] for r in rows] == list(range(5_000))
    assert [r["_step"] for r in rows] == list(range(5_000))
    assert math.isnan(rows[7]["bad"])
    # the local run log holds the same records
    assert len(trackd.read_run(run.dir).history) == 5_000


def test_init_refuses_entity_of_another_user(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess
) -> None:
    key = _new_user(server, "alice")
    _new_user(server, "treaptofun")
    _online(monkeypatch, server, key)
    with pytest.raises(AuthError, match="entity 'treaptofun' not found or you are not a member"):
        trackd.init(project="p", entity="treaptofun")
    monkeypatch.setenv("TRACKD_API_KEY", "trk_wrong")
    with pytest.raises(AuthError):
        trackd.init(project="p")


def test_team_member_writes_team_project(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess
) -> None:
    key = _new_user(server, "bob")
    with server.client() as client:
        client.post("/admin/teams", json={"name": "vision"}).raise_for_status()
        client.post("/admin/teams/vision/members", json={"user": "bob"}).raise_for_status()
    _online(monkeypatch, server, key)
    run = trackd.init(project="p", entity="vision")
    run.log({"x": 1})
    run.finish()
    remote = _get(server, f"/runs/vision/p/{run.id}", key)
    assert isinstance(remote, dict) and remote["state"] == "finished"


def test_no_key_and_no_tty(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACKD_BASE_URL", server.url)
    result = run_script(
        "import trackd\ntrackd.init(project='p')\n", tmp_path, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    assert (
        "UsageError: api_key not configured (no-tty). call trackd.login(key=...)" in result.stderr
    )


def test_resume_continues_steps_and_history(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess
) -> None:
    _online(monkeypatch, server)
    run = trackd.init(project="p", id="resumeme", config={"lr": 0.1})
    for i in range(10):
        run.log({"i": i})
    run.finish()
    with pytest.raises(UsageError, match="already exists on the server; pass resume='allow'"):
        trackd.init(project="p", id="resumeme")
    with pytest.raises(UsageError, match="resume='must' but run 'other' does not exist"):
        trackd.init(project="p", id="other", resume="must")
    run2 = trackd.init(project="p", id="resumeme", resume="must")
    assert run2.step == 10 and run2.config.lr == 0.1
    for i in range(10, 15):
        run2.log({"i": i})
    run2.finish()
    rows = _get(server, "/runs/admin/p/resumeme/history")
    assert isinstance(rows, list)
    assert [r["i"] for r in rows] == list(range(15)) and [r["_step"] for r in rows] == list(
        range(15)
    )


def test_sync_uploads_offline_runs_idempotently(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess
) -> None:
    run = trackd.init(project="offline-proj", mode="offline")
    for i in range(3_000):
        run.log({"i": i})
    run.finish()
    _online(monkeypatch, server)
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "trackd", "sync"]
    for _ in range(2):  # a second sync finds nothing to do and doubles nothing
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    rows = _get(server, f"/runs/admin/offline-proj/{run.id}/history")
    assert isinstance(rows, list) and [r["i"] for r in rows] == list(range(3_000))
    remote = _get(server, f"/runs/admin/offline-proj/{run.id}")
    assert isinstance(remote, dict) and remote["state"] == "finished"
    result = subprocess.run(
        [sys.executable, "-m", "trackd", "sync", run.dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and f"{run.id} [" in result.stderr


def test_server_down_at_init_logs_locally_and_uploads_later(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess
) -> None:
    _online(monkeypatch, server)
    server.stop()
    with pytest.warns(UserWarning, match="the daemon uploads run"):
        run = trackd.init(project="late")
    for i in range(2_000):
        run.log({"i": i})
    with pytest.warns(UserWarning, match="has not confirmed"):
        run.finish()  # says the server has not confirmed yet, and returns
    server.start()

    def landed() -> bool:
        try:
            rows = _get(server, f"/runs/admin/late/{run.id}/history")
        except httpx.HTTPStatusError:
            return False
        return isinstance(rows, list) and len(rows) == 2_000

    wait_for(landed, timeout=60, what="the daemon to upload after the server came back")
    rows = _get(server, f"/runs/admin/late/{run.id}/history")
    assert isinstance(rows, list) and [r["i"] for r in rows] == list(range(2_000))


def test_run_url_and_path_name_the_run_page_and_init_and_finish_print_it(
    monkeypatch: pytest.MonkeyPatch, server: ServerProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    _online(monkeypatch, server)
    monkeypatch.setenv("TRACKD_SILENT", "0")
    run = trackd.init(project="my-proj", id="r-1", name="first")
    page = f"{server.url}/#/r/admin/my-proj/r-1"
    assert (run.url, run.path) == (page, "admin/my-proj/r-1")
    run.log({"loss": 1.0})
    printed_at_init = capfd.readouterr().err
    trackd.finish()
    printed_at_finish = capfd.readouterr().err
    assert f"view the run at {page}" in printed_at_init
    assert f"is on {page}" in printed_at_finish
    offline = trackd.init(project="p", mode="offline")
    assert offline.url is None and offline.path == f"-/p/{offline.id}"
    offline.finish()
