"""``trackd sync`` uploads a run log; it never becomes the run's writer. (It used to send an
Attach, so the daemon took the sync process for the run's client and, once that process
exited, marked the finished run crashed.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import trackd

from tests._support.server import ServerProcess, running_server


def test_a_synced_run_stays_finished_after_sync_exits(tmp_path: Path) -> None:
    run = trackd.init(project="sync-proj", mode="offline")
    for i in range(100):
        run.log({"i": i})
    run.finish()
    time.sleep(0.3)  # the daemon closes the finished run's slot
    with running_server(tmp_path / "server") as server:
        env = dict(os.environ, TRACKD_BASE_URL=server.url, TRACKD_API_KEY=server.admin_key)
        cmd = [sys.executable, "-m", "trackd", "sync", run.dir]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        time.sleep(3.0)  # the daemon's liveness checks (1 s, then 0.5 s of grace) have run
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert _state(server, run.id) == "finished"
        log = trackd.read_run(run.dir)
        assert log.state == "finished" and log.last_seq == 102


def _state(server: ServerProcess, run_id: str) -> str:
    with server.client() as client:
        answer = client.get(f"/runs/admin/sync-proj/{run_id}")
        answer.raise_for_status()
        return str(answer.json()["state"])
