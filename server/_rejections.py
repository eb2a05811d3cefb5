"""Records an ingest batch refused: kept per run, so a user can see what never landed.

A refused record's ``seq`` still counts as applied (``last_seq`` moves past it), so the daemon
moves on; the reason is stored here, in the same transaction, and shown in the run's read
API as ``rejected_records`` (the first :data:`SHOWN`, by seq) and ``rejected_count``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from . import _schema as s

SHOWN = 100


def store(conn: Connection, is_sqlite: bool, run_pk: int, rejected: list[tuple[int, str]]) -> None:
    """Keep ``(seq, reason)`` pairs for the run (a seq stored before is left as it was)."""
    now = time.time()
    rows = [
        {"run_pk": run_pk, "seq": seq, "reason": reason, "rejected_at": now}
        for seq, reason in rejected
    ]
    dialect = sqlite if is_sqlite else postgresql
    conn.execute(dialect.insert(s.rejected_records).on_conflict_do_nothing(), rows)


def for_run(conn: Connection, run_pk: int) -> dict[str, Any]:
    """``{"rejected_records": [{"seq", "reason", "rejected_at"}, ...], "rejected_count": n}``."""
    r = s.rejected_records.c
    total = select(func.count()).select_from(s.rejected_records).where(r.run_pk == run_pk)
    count = conn.execute(total).scalar_one()
    rows = conn.execute(
        select(r.seq, r.reason, r.rejected_at)
        .where(r.run_pk == run_pk)
        .order_by(r.seq)
        .limit(SHOWN)
    )
    shown = [{"seq": seq, "reason": reason, "rejected_at": at} for seq, reason, at in rows]
    return {"rejected_records": shown, "rejected_count": int(count)}
