"""Schema migrations: a server started on an older database upgrades it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from trackd.server._db import SQLITE_NAME, database_url, unpooled_engine
from trackd.server._migrations import LATEST, migrate

from tests._support.server import running_server
from tests.server._batches import ingest, run_start


def _columns(url: str) -> set[str]:
    engine = unpooled_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("runs")}
    finally:
        engine.dispose()


def _version(url: str) -> int:
    engine = unpooled_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT version FROM schema_version")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.timeout(60)
def test_server_upgrades_a_version_1_database(tmp_path: Path, db_url: str | None) -> None:
    assert LATEST >= 2
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    url = database_url(db_url, data_dir)
    engine = unpooled_engine(url)
    try:
        assert migrate(engine, upto=1) == (0, 1)
    finally:
        engine.dispose()
    assert _version(url) == 1 and "program" not in _columns(url)
    with running_server(data_dir, db=db_url) as server, server.client() as client:
        assert "schema upgraded from version 1 to 2" in server.log_tail()
        ingest(client, "m1", [run_start("m1", program="train.py")]).raise_for_status()
        assert client.get("/runs/admin/proj/m1").json()["program"] == "train.py"
    assert _version(url) == LATEST and "program" in _columns(url)
    if db_url is None:
        assert (data_dir / SQLITE_NAME).exists()
