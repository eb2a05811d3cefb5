"""Schema migrations: a server started on an older database upgrades it."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from trackd.server._db import SQLITE_NAME, database_url, unpooled_engine
from trackd.server._migrations import LATEST, migrate

from tests._support.server import running_server
from tests.server._batches import finish, history, ingest, run_start


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


def _database_at(version: int, tmp_path: Path, db_url: str | None) -> tuple[Path, str]:
    """A new database migrated only up to ``version``, as an older server left it."""
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    url = database_url(db_url, data_dir)
    engine = unpooled_engine(url)
    try:
        assert migrate(engine, upto=version) == (0, version)
    finally:
        engine.dispose()
    return data_dir, url


@pytest.mark.timeout(60)
def test_server_upgrades_a_version_1_database(tmp_path: Path, db_url: str | None) -> None:
    assert LATEST >= 4
    data_dir, url = _database_at(1, tmp_path, db_url)
    assert _version(url) == 1 and "program" not in _columns(url)
    with running_server(data_dir, db=db_url) as server, server.client() as client:
        assert f"schema upgraded from version 1 to {LATEST}" in server.log_tail()
        ingest(client, "m1", [run_start("m1", program="train.py")]).raise_for_status()
        assert client.get("/runs/admin/proj/m1").json()["program"] == "train.py"
        # version 4: exit codes past int32 (PostgreSQL's column was int4), refused records kept
        records = [history("m1", 2, 0, {"b": b"x"}), finish("m1", 3, "failed", 0xC0000005)]
        assert ingest(client, "m1", records).status_code == 422
        run = client.get("/runs/admin/proj/m1").json()
        assert run["exit_code"] == 0xC0000005 and run["rejected_count"] == 1
    assert _version(url) == LATEST and "program" in _columns(url)
    if db_url is None:
        assert (data_dir / SQLITE_NAME).exists()


def _add_v2_user_and_key(url: str, name: str, key: str) -> None:
    """A user and key as a version-2 server stored them (an 8-character prefix, no expiry)."""
    engine = unpooled_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO users (name, is_admin, created_at) VALUES (:n, TRUE, 0)"),
                {"n": name},
            )
            conn.execute(
                text("INSERT INTO entities (name, kind, created_at) VALUES (:n, 'user', 0)"),
                {"n": name},
            )
            conn.execute(
                text(
                    "INSERT INTO members (entity_id, user_id) SELECT e.id, u.id "
                    "FROM entities e, users u WHERE e.name = :n AND u.name = :n"
                ),
                {"n": name},
            )
            conn.execute(
                text(
                    "INSERT INTO api_keys (user_id, key_hash, prefix, created_at) "
                    "SELECT id, :h, :p, 0 FROM users WHERE name = :n"
                ),
                {"n": name, "h": hashlib.sha256(key.encode()).hexdigest(), "p": key[:8]},
            )
    finally:
        engine.dispose()


@pytest.mark.timeout(60)
def test_keys_from_a_version_2_database_keep_working(tmp_path: Path, db_url: str | None) -> None:
    assert LATEST >= 4
    data_dir, url = _database_at(2, tmp_path, db_url)
    old_key = "trk_" + secrets.token_urlsafe(30)
    _add_v2_user_and_key(url, "old", old_key)
    with running_server(data_dir, db=db_url) as server, server.client(old_key) as old:
        assert f"schema upgraded from version 2 to {LATEST}" in server.log_tail()
        assert old.get("/viewer").json()["user"] == "old"
        [listed] = old.get("/keys").json()["keys"]
        assert listed["prefix"] == old_key[:8] and listed["state"] == "active"
        assert listed["expires_at"] is None
        assert old.delete(f"/keys/{old_key[:8]}").status_code == 200
        assert "was revoked" in old.get("/viewer").json()["error"]["message"]
    assert _version(url) == LATEST
