"""Schema migrations: a server started on an older database upgrades it."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
from sqlalchemy import inspect, text
from trackd.server._db import SQLITE_NAME, database_url, unpooled_engine
from trackd.server._migrations import LATEST, migrate
from trackd.server._values import encode_value

from tests._support.server import ServerProcess, running_server
from tests.server._batches import finish, get_msgpack, history, ingest, run_start


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


OLD_KINDS: list[Any] = [
    0.25, -0.0, math.nan, math.inf, -math.inf, 7, 2**63 - 1, -(2**63), 2**64 - 1, True,
    None, "s", {"a": [1, 2.5]}, [1, "x"],
]  # fmt: skip


def _add_v4_run_with_history(url: str, values: dict[str, dict[int, Any]]) -> None:
    """A run and its history rows as a version-4 server stored them: one row per point."""
    engine = unpooled_engine(url)
    config = msgpack.packb({"lr": 0.01, "opt": "adam"})
    summary = msgpack.packb({"loss": 0.5})
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO projects (entity_id, name, created_at) "
                    "SELECT id, 'proj', 0 FROM entities WHERE name = 'old'"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO runs (project_id, run_id, name, tags, state, config, summary, "
                    "summary_state, created_at, heartbeat_at, last_seq, last_step) SELECT id, "
                    "'r1', 'r1', '[]', 'finished', :c, :s, :e, 1, 1, 99999, 2499 FROM projects"
                ),
                {"c": config, "s": summary, "e": b""},
            )
            for key, points in values.items():
                conn.execute(
                    text("INSERT INTO run_keys (run_pk, key) SELECT id, :k FROM runs"), {"k": key}
                )
                key_id = conn.execute(
                    text("SELECT id FROM run_keys WHERE key = :k"), {"k": key}
                ).scalar_one()
                rows = [
                    {"step": step, "t": 1000.0 + step, "k": key_id, **_old_columns(key, v)}
                    for step, v in points.items()
                ]
                conn.execute(
                    text(
                        "INSERT INTO history (run_pk, key_id, step, time, kind, num, ival, text) "
                        "SELECT id, :k, :step, :t, :kind, :num, :ival, :text FROM runs"
                    ),
                    rows,
                )
    finally:
        engine.dispose()


def _old_columns(key: str, value: Any) -> dict[str, Any]:
    kind, num, ival, txt = encode_value(key, value)
    return {"kind": kind, "num": num, "ival": ival, "text": txt}


def _blocks_without_subs(url: str) -> tuple[int, int]:
    """(plain blocks without sub-block summaries, plain blocks with them)."""
    engine = unpooled_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT subs IS NULL, COUNT(*) FROM history_blocks WHERE mask IN (1, 2) "
                    "GROUP BY subs IS NULL"
                )
            )
            counts = {bool(missing): int(n) for missing, n in rows}
    finally:
        engine.dispose()
    return counts.get(True, 0), counts.get(False, 0)


def _same(a: Any, b: Any) -> bool:
    # -0.0 is 0.0 here: the old layout's SQLite REAL column already dropped its sign
    if type(a) is float and type(b) is float:
        return (math.isnan(a) and math.isnan(b)) or a == b
    return type(a) is type(b) and a == b


@pytest.mark.timeout(120)
def test_history_of_a_version_4_database_moves_into_blocks(
    tmp_path: Path, db_url: str | None
) -> None:
    data_dir, url = _database_at(4, tmp_path, db_url)
    old_key = "trk_" + secrets.token_urlsafe(30)
    _add_v2_user_and_key(url, "old", old_key)
    long = {step: step * 0.5 for step in range(2500)}  # three blocks
    kinds = {step * 100: v for step, v in enumerate(OLD_KINDS)}
    _add_v4_run_with_history(url, {"long": long, "kinds": kinds})
    with running_server(data_dir, db=db_url) as server, server.client(old_key) as old:
        assert f"schema upgraded from version 4 to {LATEST}" in server.log_tail()
        rows = get_msgpack(old, "/runs/old/proj/r1/history")
        assert [r["_step"] for r in rows] == list(range(2500))
        assert all(r["long"] == long[r["_step"]] for r in rows)
        assert all(r["_timestamp"] == 1000.0 + r["_step"] for r in rows)
        got = {r["_step"]: r["kinds"] for r in rows if "kinds" in r}
        assert got.keys() == kinds.keys()
        assert all(_same(got[s], kinds[s]) for s in kinds), got
        sampled = get_msgpack(old, "/runs/old/proj/r1/history", keys="long", samples=10)
        assert 1249.5 in sampled["keys"]["long"]["value"]  # the max survives
        # the runs' config and summary were copied for the database's filters
        listed = old.get(
            "/entities/old/projects/proj/runs", params={"filters": '{"config.lr": 0.01}'}
        )
        assert [r["id"] for r in listed.json()["runs"]] == ["r1"]
        # migration 12 gave the moved blocks their sub-block summaries: a chart of the old
        # run is the chart of the same points logged now
        assert _blocks_without_subs(url) == (0, 3)
        fresh = [run_start("r2")] + [
            history("r2", step + 2, step, {"long": v}) for step, v in long.items()
        ]
        ingest(old, "r2", fresh).raise_for_status()
        for samples in (100, 10):
            charts = [
                get_msgpack(old, f"/runs/old/proj/{run}/history", keys="long", samples=samples)
                for run in ("r1", "r2")
            ]
            assert charts[0] == charts[1] and len(charts[0]["keys"]["long"]["step"]) > 2
        # and the run goes on: new points append after the moved ones
        ingest(old, "r1", [history("r1", 100_000, 2500, {"long": 1.0})]).raise_for_status()
        tail = get_msgpack(old, "/runs/old/proj/r1/history", min_step=2498)
        assert [r["long"] for r in tail] == [1249.0, 1249.5, 1.0]
    assert _version(url) == LATEST


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_two_servers_start_at_once_on_one_empty_postgres(tmp_path: Path, pg_cluster: Any) -> None:
    url = pg_cluster.fresh_url()
    servers = [ServerProcess(tmp_path / f"s{i}", db=url) for i in range(2)]
    servers[1].admin_key = servers[0].admin_key  # one admin for the one database
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert not errors, errors
        for server in servers:
            with server.client() as client:
                assert client.get("/viewer").json()["user"] == "admin"
        assert _version(database_url(url, tmp_path)) == LATEST
    finally:
        for server in servers:
            server.stop()


@pytest.mark.timeout(60)
def test_runs_of_a_version_9_database_have_no_user_and_new_runs_get_one(
    tmp_path: Path, db_url: str | None
) -> None:
    data_dir, url = _database_at(9, tmp_path, db_url)
    old_key = "trk_" + secrets.token_urlsafe(30)
    _add_v2_user_and_key(url, "old", old_key)
    _add_v4_run_with_history(url, {})
    assert "user_name" not in _columns(url)
    with running_server(data_dir, db=db_url) as server, server.client(old_key) as old:
        assert f"schema upgraded from version 9 to {LATEST}" in server.log_tail()
        assert old.get("/runs/old/proj/r1").json()["user"] is None
        ingest(old, "r2", [run_start("r2")]).raise_for_status()
        assert old.get("/runs/old/proj/r2").json()["user"] == "old"
        # a run without a user sorts last either way, as any missing value does
        for order in ("user", "-user"):
            listed = old.get("/entities/old/projects/proj/runs", params={"order": order})
            assert [r["id"] for r in listed.json()["runs"]] == ["r2", "r1"]
    assert _version(url) == LATEST
