"""System metrics (``SystemStats`` records) in a run's history, on their own axis.

Their keys (``system/...``) are stored in the run's history like any other key, with the
sample's index in the run (0, 1, 2, ...) as the step and the sample's wall time as the time:
they never move the run's ``last_step`` or its summary, and history reads leave them out
unless asked for by name (``keys=system/cpu.percent``). Chart them by time (``x: "time"`` in
the bulk read)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from trackd._wire import records as p

from . import _schema as s
from ._record_rules import SYSTEM_PREFIX


def is_system(key: str) -> bool:
    return key.startswith(SYSTEM_PREFIX)


def as_rows(conn: Connection, run_pk: int, stats: list[Any]) -> list[p.History]:
    """``stats`` as History rows whose steps continue the run's sample index."""
    k = s.run_keys.c
    prefix = func.substr(k.key, 1, len(SYSTEM_PREFIX)) == SYSTEM_PREFIX
    last = conn.execute(select(func.max(k.last_step)).where(k.run_pk == run_pk, prefix)).scalar()
    first = 0 if last is None else int(last) + 1
    return [
        p.History(p.HISTORY, r.run_id, r.seq, first + i, float(r.time), r.data)
        for i, r in enumerate(stats)
    ]


def keys_of(conn: Connection, run_pk: int) -> list[str]:
    """The run's system-metrics keys, in the order first stored."""
    k = s.run_keys.c
    prefix = func.substr(k.key, 1, len(SYSTEM_PREFIX)) == SYSTEM_PREFIX
    rows = conn.execute(select(k.key).where(k.run_pk == run_pk, prefix).order_by(k.id))
    return [key for (key,) in rows]
