"""The server keeps everything across a restart on the same port and data."""

from __future__ import annotations

import httpx
import pytest

from tests._support.server import ServerProcess
from tests.server._batches import get_msgpack, history, ingest, run_start, unpack


@pytest.mark.timeout(90)
def test_restart_keeps_runs_and_keys(server: ServerProcess, admin: httpx.Client) -> None:
    records = [run_start("r"), *[history("r", i + 2, i, {"x": i}) for i in range(10)]]
    ingest(admin, "r", records[:6]).raise_for_status()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        admin.get("/viewer")
    server.start()
    # the admin user is made on the first start only (its key, given, is never printed)
    assert server.log_tail().count("admin user 'admin' created") == 1
    assert unpack(ingest(admin, "r", records))["durable_seq"] == 11
    assert [row["x"] for row in get_msgpack(admin, "/runs/admin/proj/r/history")] == list(range(10))
    server.kill()
    server.start()
    assert admin.get("/runs/admin/proj/r").json()["last_seq"] == 11
