"""The labelled writers of a shared run: each one's own seqs and state (``run_writers``).

A run written by one process has no row here: its writer is ``""`` and its ``last_seq`` and
state are the run's own columns, as before shared runs. Every labelled writer (``"rank-3"``)
has a row: the highest seq of its log the server applied (so each writer's records are
applied exactly once, whatever the others sent), its state (``running``, then ``finished``,
``failed`` or ``crashed`` from its own Finish record), whether it is the run's primary
writer (its Finish ends the run), its host and pid, its last step, and its last heartbeat
(or ingest). Rows are read and written while the run's row is locked (see ``_ingest``), so
concurrent writers of one run take turns and never lose each other's updates.

Liveness is each writer's own: the daemon's heartbeat names its writer, and :func:`reap`
(called by the server's reaper) marks a ``running`` writer silent for longer than the
heartbeat timeout ``crashed`` (a machine lost with its daemon: no Finish ever comes). A
crashed primary takes its run with it; a crashed secondary leaves the run as its primary
has it. A writer marked so comes back with its next heartbeat or batch, as a run does.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Row, and_, select, update

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
            "heartbeat_at": time.time(),
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


def beat(conn: Connection, run_pk: int, writer: str, now: float) -> bool:
    """A heartbeat of the run's labelled ``writer`` (a reaped one comes back); True if it
    is the run's primary. The caller has updated (so locked) the run's row first."""
    w = s.run_writers.c
    mine = and_(w.run_pk == run_pk, w.writer == writer)
    conn.execute(
        update(s.run_writers)
        .where(mine, w.state == "crashed", w.finished_at.is_(None))
        .values(state="running")
    )
    conn.execute(update(s.run_writers).where(mine).values(heartbeat_at=now))
    primary = conn.execute(select(w.is_primary).where(mine)).scalar()
    return bool(primary)


def reap(db: Database, timeout: float, now: float | None = None) -> int:
    """Mark ``running`` writers with no heartbeat for ``timeout`` seconds crashed, and the
    running runs whose primary writer that made crashed; returns how many writers."""
    cutoff = (time.time() if now is None else now) - timeout
    w = s.run_writers.c
    with db.write() as conn:  # writers alone: ingest locks a run's row before its writers'
        silent = w.heartbeat_at < cutoff
        result = conn.execute(
            update(s.run_writers).where(w.state == "running", silent).values(state="crashed")
        )
    count = int(result.rowcount or 0)
    if count:
        lost = select(w.run_pk).where(w.is_primary, w.state == "crashed", w.finished_at.is_(None))
        with db.write() as conn:
            runs = s.runs.c
            conn.execute(
                update(s.runs)
                .where(runs.state == "running", runs.id.in_(lost))
                .values(state="crashed")
            )
    return count


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
