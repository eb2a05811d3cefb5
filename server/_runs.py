"""Projects and runs: lookup, creation on first ingest, and the JSON shape of a run."""

from __future__ import annotations

import json
import time
from typing import Any

import msgpack
from sqlalchemy import Connection, Row, select
from trackd._wire.limits import RUN_ID_RULE, valid_run_id

from . import _schema as s
from ._accounts import check_name
from ._auth import Entity
from ._values import render
from .errors import BadRequest, NotFound

RUN_STATES = frozenset({"running", "finished", "failed", "crashed"})
EMPTY_MAP = msgpack.packb({})


def check_run_id(run_id: object) -> str:
    if not valid_run_id(run_id):
        raise BadRequest(f"run_id {run_id!r} is not valid; use {RUN_ID_RULE}")
    return run_id


def unpack(blob: bytes | None) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False) if blob else {}


def project_id(conn: Connection, entity: Entity, project: str) -> int | None:
    """The project's id, ``None`` if it does not exist, or 400 for a name none can have."""
    ensure_project(project)
    return conn.execute(
        select(s.projects.c.id).where(
            s.projects.c.entity_id == entity.id, s.projects.c.name == project
        )
    ).scalar()


def find_run(conn: Connection, entity: Entity, project: str, run_id: str) -> Row[Any] | None:
    """The run's row, ``None`` if the project or the run does not exist, or 400 for a bad id."""
    check_run_id(run_id)
    pid = project_id(conn, entity, project)
    if pid is None:
        return None
    return conn.execute(
        select(s.runs).where(s.runs.c.project_id == pid, s.runs.c.run_id == run_id)
    ).first()


def get_run(conn: Connection, entity: Entity, project: str, run_id: str) -> Row[Any]:
    """The run's row, or :class:`NotFound` naming it."""
    row = find_run(conn, entity, project, run_id)
    if row is None:
        raise NotFound(f"run {run_id!r} not found in project '{entity.name}/{project}'")
    return row


def new_run_values(
    project: int, run_id: str, start_time: float | None, user: str
) -> dict[str, Any]:
    """Column values for a run first seen in an ingest batch (its RunStart fills the rest);
    ``user`` is the name of the user whose API key sent it (the run's creator)."""
    now = time.time()
    return {
        "project_id": project,
        "run_id": run_id,
        "name": run_id,
        "tags": "[]",
        "state": "running",
        "config": EMPTY_MAP,
        "summary": EMPTY_MAP,
        "summary_state": b"",
        "config_json": "{}",
        "summary_json": "{}",
        "created_at": start_time if start_time is not None else now,
        "heartbeat_at": now,
        "last_seq": 0,
        "user_name": user,
    }


def run_json(row: Row[Any], entity: str, project: str) -> dict[str, Any]:
    """The API's view of a run (config and summary rendered whatever they hold)."""
    return {
        "id": row.run_id,
        "entity": entity,
        "project": project,
        "name": row.name,
        "group": row.run_group,
        "job_type": row.job_type,
        "tags": json.loads(row.tags),
        "notes": row.notes,
        "state": row.state,
        "config": render(unpack(row.config)),
        "summary": render(unpack(row.summary)),
        "created_at": row.created_at,
        "heartbeat_at": row.heartbeat_at,
        "finished_at": row.finished_at,
        "host": row.host,
        "user": row.user_name,
        "program": row.program,
        "git_commit": row.git_commit,
        "exit_code": row.exit_code,
        "last_seq": row.last_seq,
        "last_step": row.last_step,
        "environment": json.loads(row.environment) if row.environment else None,
    }


def ensure_project(name: str) -> str:
    return check_name("project", name)
