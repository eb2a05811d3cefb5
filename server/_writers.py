"""The labelled writers of a shared run: each one's own seqs and state (``run_writers``).

A run written by one process has no row here: its writer is ``""`` and its ``last_seq`` and
state are the run's own columns, as before shared runs. Every labelled writer (``"rank-3"``)
has a row: the highest seq of its log the server applied (so each writer's records are
applied exactly once, whatever the others sent), its state (``running``, then ``finished``,
``failed`` or ``crashed`` from its own Finish record), whether it is the run's primary
writer (its Finish ends the run), its host and pid, and its last step. Rows are read and
written while the run's row is locked (see ``_ingest``), so concurrent writers of one run
take turns and never lose each other's updates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select, update

from . import _schema as s
from ._db import Database


def lock(db: Database, conn: Connection, run_pk: int, writer: str) -> Row[Any]:
    """The writer's row (created on first sight); the caller holds the run's lock."""
    db.insert_ignore(
        conn,
        s.run_writers,
        {
            "run_pk": run_pk,
            "writer": writer,
            "is_primary": False,
            "state": "running",
            "last_seq": 0,
        },
    )
    w = s.run_writers.c
    row = conn.execute(select(s.run_writers).where(w.run_pk == run_pk, w.writer == writer)).first()
    assert row is not None
    return row


def save(conn: Connection, run_pk: int, writer: str, values: dict[str, Any]) -> None:
    """Store what a batch changed in the writer's row."""
    if values:
        w = s.run_writers.c
        query = update(s.run_writers).where(w.run_pk == run_pk, w.writer == writer)
        conn.execute(query.values(**values))


def for_run(conn: Connection, run_pk: int) -> list[dict[str, Any]]:
    """``[{"label", "primary", "state", "host", "pid", "last_seq", "last_step", ...}]``,
    by label (empty for a run with one unlabelled writer)."""
    w = s.run_writers.c
    rows = conn.execute(select(s.run_writers).where(w.run_pk == run_pk).order_by(w.writer))
    return [
        {
            "label": row.writer,
            "primary": bool(row.is_primary),
            "state": row.state,
            "host": row.host,
            "pid": row.pid,
            "last_seq": row.last_seq,
            "last_step": row.last_step,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
            "exit_code": row.exit_code,
        }
        for row in rows
    ]
