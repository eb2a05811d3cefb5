"""``trackd server --workers N``: N worker processes answering on one port, each restarted
if it dies; refused on SQLite, which has one writer at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests._support.postgres import PostgresCluster
from tests._support.procs import pid_alive, wait_for
from tests._support.server import ServerProcess
from tests.server._batches import get_msgpack, history, ingest, run_start


def _workers(parent: int) -> set[int]:
    """The pids of ``parent``'s worker processes (not multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_workers_share_one_port_and_a_killed_one_is_replaced(
    tmp_path: Path, pg_cluster: PostgresCluster
) -> None:
    url = pg_cluster.fresh_url()
    server = ServerProcess(tmp_path / "server", db=url, args=["--workers", "2"])
    server.start(timeout=90)  # the workers import the app too: slow on a busy machine
    try:
        assert server.proc is not None
        parent = server.proc.pid
        first = wait_for(lambda: len(_workers(parent)) == 2 and _workers(parent), 30, "2 workers")
        # a new connection per request: a kept-alive one may be to the worker killed below
        with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            ingest(client, "w", [run_start("w"), history("w", 2, 0, {"x": 1.0})]).raise_for_status()
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            # the other worker answers, or the new one
            ingest(client, "w", [history("w", 3, 1, {"x": 2.0})]).raise_for_status()
            now = wait_for(
                lambda: len(_workers(parent)) == 2 and _workers(parent),
                60,
                "the killed worker to be replaced",
            )
            assert victim not in now
            rows = get_msgpack(client, "/runs/admin/proj/w/history")
            assert [(r["_step"], r["x"]) for r in rows] == [(0, 1.0), (1, 2.0)]
    finally:
        server.stop()  # SIGTERM: the parent stops its workers
    assert not pid_alive(parent)
    assert not any(pid_alive(pid) for pid in now)


def test_more_than_one_worker_on_sqlite_is_refused(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "trackd.server", "--port", "0", "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    result = subprocess.run(
        [*cmd, "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "--workers 2 needs PostgreSQL" in result.stderr and "--db postgresql://" in result.stderr


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_workers_stop_when_the_main_process_is_killed(
    tmp_path: Path, pg_cluster: PostgresCluster
) -> None:
    server = ServerProcess(tmp_path / "server", db=pg_cluster.fresh_url(), args=["--workers", "2"])
    server.start(timeout=90)
    assert server.proc is not None
    parent = server.proc.pid
    workers = wait_for(lambda: len(_workers(parent)) == 2 and _workers(parent), 30, "2 workers")
    server.kill()  # kill -9: it cannot stop its workers itself
    wait_for(lambda: not any(pid_alive(pid) for pid in workers), 30, "the workers to stop")
