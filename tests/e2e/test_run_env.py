"""Issue 11: system metrics, console capture and the run environment, end to end.

Real training processes (this one, or scripts in subprocesses), the real daemon and a real
server subprocess; everything is read back through the server's read API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trackd

from tests._support.procs import run_script, start_script, wait_for
from tests._support.server import ServerProcess, running_server
from tests.e2e.conftest import Remote

PROJECT = "env"


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], ServerProcess]]:
    """One server per database for this module's tests (each test uses runs of its own),
    started when a test first asks for it."""
    with contextlib.ExitStack() as stack:
        started: dict[str, ServerProcess] = {}

        def get(db: str) -> ServerProcess:
            if db not in started:
                url = (
                    request.getfixturevalue("pg_cluster").fresh_url() if db == "postgres" else None
                )
                server = running_server(tmp_path_factory.mktemp(f"server-{db}"), db=url)
                started[db] = stack.enter_context(server)
            return started[db]

        yield get


@pytest.fixture
def online(
    request: pytest.FixtureRequest,
    servers: Callable[[str], ServerProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerProcess:
    """Runs in this test upload to the module's server (SQLite, or PostgreSQL when
    parametrized indirectly with "postgres")."""
    server = servers(getattr(request, "param", "sqlite"))
    monkeypatch.setenv("TRACKD_BASE_URL", server.url)
    monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
    monkeypatch.setenv("TRACKD_ENVIRONMENT_FILES", "1")  # tests/conftest.py turns them off
    return server


@pytest.fixture
def remote(online: ServerProcess) -> Iterator[Remote]:
    reader = Remote(online)
    yield reader
    reader.close()


def _logs(remote: Remote, run_id: str, after: int = 0) -> dict[str, Any]:
    doc = remote.get(f"/runs/admin/{PROJECT}/{run_id}/logs?after={after}")
    assert isinstance(doc, dict)
    return doc


def _texts(remote: Remote, run_id: str, stream: str) -> list[str]:
    return [ln["text"] for ln in _logs(remote, run_id)["lines"] if ln["stream"] == stream]


def _run_id(out: str) -> str:
    return next(ln.split("=", 1)[1] for ln in out.splitlines() if ln.startswith("RUN="))


@pytest.mark.parametrize("online", ["sqlite", "postgres"], indirect=True)
def test_system_metrics_on_their_own_axis(
    online: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_SYSTEM_INTERVAL", "0.2")
    run = trackd.init(project=PROJECT)
    for i in range(20):
        run.log({"loss": 1.0 / (i + 1)})
    wait_for(lambda: _local_samples(run.dir) >= 4, timeout=20, what="4 system samples")
    run.log({"loss": 0.0}, step=25)
    run.finish()
    doc = remote.run(PROJECT, run.id)
    assert doc is not None and doc["state"] == "finished"
    assert doc["last_step"] == 25  # samples never move the user's step
    assert not [k for k in doc["summary"] if k.startswith("system/")]
    assert {"system/cpu.percent", "system/proc.memory.rss_mb"} <= set(doc["system_keys"])
    assert all(k.startswith("system/") for k in doc["system_keys"])
    rows = remote.history(PROJECT, run.id)
    assert [r["_step"] for r in rows] == [*range(20), 25]
    assert all(set(r) == {"_step", "_timestamp", "loss"} for r in rows)
    key = "system/proc.memory.rss_mb"
    got = remote.get(f"/runs/admin/{PROJECT}/{run.id}/history?keys={key},system/cpu.percent")
    n = _local_samples(run.dir)
    assert [r["_step"] for r in got] == list(range(n))  # the sample index is their axis
    assert all(r[key] > 10 for r in got)  # this process's resident memory, in MiB
    assert all(0 <= r["system/cpu.percent"] <= 100 for r in got)
    times = [r["_timestamp"] for r in got]
    assert times == sorted(times) and times[0] >= run.start_time
    bulk = remote._client.post(
        f"/entities/admin/projects/{PROJECT}/history",
        json={"runs": [run.id], "keys": [key], "x": "time"},
        headers={"Accept": "application/json"},
    )
    bulk.raise_for_status()
    (series,) = bulk.json()["series"]
    assert series["step"] == list(range(n)) and series["time"] == pytest.approx(times)


def _local_samples(run_dir: str) -> int:
    from trackd._reader import read_records

    records, _ = read_records(run_dir)
    return sum(1 for r in records if r.kind == 11)


CONSOLE_SCRIPT = """
    import sys, time, trackd
    from tqdm import tqdm
    run = trackd.init(project="env")
    print("RUN=" + run.id, flush=True)
    print("hello from stdout")
    print("a warning on stderr", file=sys.stderr)
    for _ in tqdm(range(300), desc="epoch", mininterval=0, ascii=True):
        time.sleep(0.001)
    sys.stdout.write("no newline at the end")
    trackd.finish()
"""


@pytest.mark.parametrize("online", ["sqlite", "postgres"], indirect=True)
def test_console_lines_read_back_with_the_bar_collapsed(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    done = run_script(CONSOLE_SCRIPT, tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = _run_id(done.stdout)
    # the user still sees everything, unchanged (here: a pipe; text mode reads "\r" as "\n")
    assert done.stdout.startswith(f"RUN={run_id}\nhello from stdout\nno newline at the end")
    assert done.stderr.count("epoch:") > 100 and "a warning on stderr\n" in done.stderr
    assert _texts(remote, run_id, "stdout") == [
        f"RUN={run_id}",
        "hello from stdout",
        "no newline at the end",
    ]
    stderr = _texts(remote, run_id, "stderr")
    assert stderr[0] == "a warning on stderr"
    assert len(stderr) == 2, stderr  # 300 bar updates collapse to the bar's last state
    assert stderr[1].startswith("epoch: 100%") and "300/300" in stderr[1]
    page = _logs(remote, run_id)
    assert [ln["line"] for ln in page["lines"]] == list(range(1, 6))
    assert page["last_line"] == 5 and {ln["writer"] for ln in page["lines"]} == {""}
    assert all(ln["time"] > 1e9 for ln in page["lines"])
    rest = _logs(remote, run_id, after=3)["lines"]
    assert [ln["line"] for ln in rest] == [4, 5]
    page = remote.get(f"/runs/admin/{PROJECT}/{run_id}/logs?after=1&limit=2")
    assert [ln["line"] for ln in page["lines"]] == [2, 3] and page["last_line"] == 5
    refused = remote._client.get(f"/runs/admin/{PROJECT}/{run_id}/logs?limit=0")
    assert refused.status_code == 400 and "limit=0" in refused.text


KILLED_SCRIPT = """
    import os, signal, sys, time, trackd
    run = trackd.init(project="env")
    print("RUN=" + run.id, flush=True)
    for i in range(3):
        print(f"line {i}")
    print("on stderr", file=sys.stderr)
    sys.stdout.write("\\rhalf a bar")
    time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_output_before_kill_9_is_on_the_server(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    proc = start_script(KILLED_SCRIPT, tmp_path)
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run_id = _run_id(out)

    def crashed() -> bool:
        doc = remote.run(PROJECT, run_id)
        return doc is not None and doc["state"] == "crashed"

    wait_for(crashed, timeout=30, what="the killed run to read as crashed")
    wait_for(lambda: len(_logs(remote, run_id)["lines"]) >= 5, timeout=10, what="the lines")
    assert _texts(remote, run_id, "stdout") == [f"RUN={run_id}", "line 0", "line 1", "line 2"]
    assert _texts(remote, run_id, "stderr") == ["on stderr"]


ENV_SCRIPT = """
    import sys, trackd
    run = trackd.init(project="env")
    print("RUN=" + run.id, flush=True)
    print("hello from stdout")
    print("and from stderr", file=sys.stderr)
    trackd.finish()
"""


def test_capture_off_stores_no_lines(
    online: ServerProcess, remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_CONSOLE", "0")
    done = run_script(ENV_SCRIPT, tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = _run_id(done.stdout)
    assert "hello from stdout" in done.stdout
    doc = remote.run(PROJECT, run_id)
    assert doc is not None and doc["state"] == "finished"
    assert _logs(remote, run_id) == {"lines": [], "last_line": 0}


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


def test_environment_and_its_files_read_back(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("lr = 0.1\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    _git(repo, "remote", "add", "origin", "https://example.org/team/repo.git")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("lr = 0.2\n")  # uncommitted: the checkout is dirty
    done = run_script(ENV_SCRIPT, repo)
    assert done.returncode == 0, done.stderr
    run_id = _run_id(done.stdout)
    doc = remote.run(PROJECT, run_id)
    assert doc is not None
    env = doc["environment"]
    assert env["git"] == {
        "remote": "https://example.org/team/repo.git",
        "commit": commit,
        "branch": "main",
        "dirty": True,
    }
    assert doc["git_commit"] == commit
    assert env["cwd"] == str(repo) and env["args"][0].endswith(".py")
    assert env["python"].count(".") == 2 and env["cpu_count"] == os.cpu_count()
    assert env["host"] == doc["host"] and env["gpu_count"] == len(env["gpus"])
    assert "cuda" not in env  # the script never imported torch
    files = {f["name"] for f in remote.get(f"/runs/admin/{PROJECT}/{run_id}/files")["files"]}
    assert {"requirements.txt", "diff.patch"} <= files
    diff = _download(remote, run_id, "diff.patch")
    assert "-lr = 0.1" in diff and "+lr = 0.2" in diff
    requirements = _download(remote, run_id, "requirements.txt").splitlines()
    assert any(line.startswith("msgpack==") for line in requirements)


def _download(remote: Remote, run_id: str, name: str) -> str:
    response = remote._client.get(f"/runs/admin/{PROJECT}/{run_id}/files/{name}")
    response.raise_for_status()
    return response.text
