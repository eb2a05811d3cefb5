"""The tables, as SQLAlchemy Core objects for building queries.

The DDL that creates them lives in :mod:`._migrations`; these objects describe the schema at
the latest migration and are never used to create tables.

History is stored as blocks of consecutive steps per (run, key), in ``history_blocks``
(migration 6; the layout is described in :mod:`._blocks`). Before migration 6 it was one row
per (run, key, step) in ``history``, a value's type kept in ``kind`` and the value in the
column that holds that type exactly (the same kinds :mod:`._values` still uses):

    kind     column   value
    NULL     -        None
    INT      ival     int in int64 range
    BIGINT   text     int beyond int64 (uint64), as decimal text
    BOOL     ival     0 / 1
    FLOAT    num      finite float
    NAN      -        float('nan')
    POS_INF  -        float('inf')
    NEG_INF  -        float('-inf')
    STR      text     str
    JSON     text     dict or list, as JSON
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = MetaData()


class JsonText(TypeDecorator[Any]):
    """JSON text: a TEXT column on SQLite, JSONB on PostgreSQL; bound as the JSON text."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and dialect.name == "postgresql":
            return json.loads(value)  # JSONB's own processor writes it out again
        return value


Id = BigInteger().with_variant(Integer, "sqlite")

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", Double, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),  # migration 3
    Column("revoked_at", Double),  # migration 3
)

entities = Table(
    "entities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),  # "user" | "team"
    Column("created_at", Double, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("entity_id", Id, primary_key=True),
    Column("user_id", Id, primary_key=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Id, primary_key=True),
    Column("entity_id", Id, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("project_id", Id, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("run_group", Text),
    Column("job_type", Text),
    Column("tags", Text, nullable=False),  # JSON list of str
    Column("notes", Text),
    Column("state", Text, nullable=False),
    Column("config", LargeBinary, nullable=False),  # msgpack map
    Column("summary", LargeBinary, nullable=False),  # msgpack map
    Column("summary_state", LargeBinary, nullable=False),  # msgpack, see _summaries
    Column("created_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("finished_at", Double),
    Column("host", Text),
    Column("program", Text),  # migration 2
    Column("git_commit", Text),
    Column("exit_code", BigInteger),  # migration 4 widened it from INTEGER
    Column("last_seq", BigInteger, nullable=False),
    Column("last_step", BigInteger),
    Column("config_json", JsonText),  # migration 6 (PostgreSQL: JSONB), see _run_json
    Column("summary_json", JsonText),  # migration 6 (PostgreSQL: JSONB)
    Column("environment", Text),  # migration 9: RunStart.environment as JSON text
    Column("user_name", Text),  # migration 10: the user whose key created the run
)

run_keys = Table(
    "run_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_pk", Id, nullable=False),
    Column("key", Text, nullable=False),
    Column("last_step", BigInteger),  # migration 6: the key's last step
    Column("tail_start", BigInteger),  # migration 6: start_step of its last block
    Column("tail_n", Integer),  # migration 6: points in its last block
)

history_blocks = Table(  # migration 6
    "history_blocks",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("key_id", BigInteger, primary_key=True),
    Column("start_step", BigInteger, primary_key=True),
    Column("end_step", BigInteger, nullable=False),
    Column("n", Integer, nullable=False),
    Column("mask", SmallInteger, nullable=False),
    Column("min_v", Double),
    Column("min_step", BigInteger),
    Column("min_time", Double),
    Column("max_v", Double),
    Column("max_step", BigInteger),
    Column("max_time", Double),
    Column("first_v", Double),
    Column("last_v", Double),
    Column("subs", LargeBinary),  # migration 12: see _block_subs
    Column("data", LargeBinary, nullable=False),
)

rejected_records = Table(  # migration 4
    "rejected_records",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("rejected_at", Double, nullable=False),
)

run_blobs = Table(  # migration 5
    "run_blobs",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("sha256", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
)

run_files = Table(  # migration 5
    "run_files",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("sha256", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("updated_at", Double, nullable=False),
)

run_media = Table(  # migration 5
    "run_media",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("value", Text, nullable=False),  # JSON
)

run_writers = Table(  # migration 8: the labelled writers of a shared run, see _writers
    "run_writers",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("writer", Text, primary_key=True),
    Column("is_primary", Boolean, nullable=False),
    Column("state", Text, nullable=False),  # running | finished | failed | crashed
    Column("host", Text),
    Column("pid", BigInteger),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_step", BigInteger),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("exit_code", BigInteger),
    Column("heartbeat_at", Double),  # migration 11: its last heartbeat or ingest
)

console_lines = Table(  # migration 9
    "console_lines",
    metadata,
    Column("run_pk", BigInteger, primary_key=True),
    Column("line", BigInteger, primary_key=True),  # 1, 2, ... per run, in the order applied
    Column("time", Double, nullable=False),
    Column("stream", Text, nullable=False),  # stdout | stderr
    Column("writer", Text, nullable=False),  # the writer's label ("" = the run's only writer)
    Column("text", Text, nullable=False),
)
