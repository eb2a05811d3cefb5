"""One pass of a background duty across replicas: a PostgreSQL advisory lock per duty.

Several ``trackd server`` replicas (or ``--workers``) on one PostgreSQL database each run
the same background duties (e.g. marking silent runs crashed). A pass runs only in the
replica that takes the duty's lock with ``pg_try_advisory_lock`` on a connection of its
own; the others skip that pass and try again on their next interval. The lock belongs to
that connection's session, so a replica killed mid-pass (``kill -9``) loses its connection
and with it the lock: the next replica's pass takes it. SQLite has one server process
(``--workers`` is refused there), so its passes always run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from ._db import Database

REAPER = 0x7472_6B65  # "trke": the crash reaper (migrations use 0x74726B64)


@contextmanager
def one_replica(db: Database, key: int) -> Iterator[bool]:
    """Yields whether this replica holds duty ``key``'s lock for the body (``False``:
    another replica's pass is running; skip this one). Released when the body ends."""
    if db.is_sqlite:
        yield True
        return
    with db.writer.connect() as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
