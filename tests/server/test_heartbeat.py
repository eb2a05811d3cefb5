"""Heartbeats, and runs marked crashed when they stop."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests._support.server import running_server
from tests.server._batches import ingest, run_start


def _state(client: httpx.Client, run_id: str) -> str:
    state: str = client.get(f"/runs/admin/proj/{run_id}").json()["state"]
    return state


def _wait_for(client: httpx.Client, run_id: str, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _state(client, run_id) != state:
        assert time.monotonic() < deadline, f"run {run_id} never became {state}"
        time.sleep(0.1)


@pytest.mark.timeout(60)
def test_silent_run_is_marked_crashed(tmp_path: Path, db_url: str | None) -> None:
    args = ["--heartbeat-timeout", "1.5"]
    with running_server(tmp_path / "server", db=db_url, args=args) as server, server.client() as c:
        ingest(c, "quiet", [run_start("quiet")]).raise_for_status()
        ingest(c, "alive", [run_start("alive")]).raise_for_status()
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            ref = {"entity": "admin", "project": "proj", "run_id": "alive"}
            assert c.post("/heartbeat", json=ref).json()["state"] == "running"
            time.sleep(0.3)
        _wait_for(c, "quiet", "crashed", 10)
        assert _state(c, "alive") == "running"
        ingest(c, "quiet", [run_start("quiet", seq=2)]).raise_for_status()
        assert _state(c, "quiet") == "running"
        missing = c.post("/heartbeat", json={"project": "proj", "run_id": "nope"})
        assert missing.status_code == 404
