"""The background task that marks silent runs ``crashed``.

A run whose state is ``running`` and whose last heartbeat (or ingest) is older than the
heartbeat timeout is marked ``crashed``. Each replica's reaper tries every interval; a pass
runs in one replica at a time (:mod:`._duty_lock`), and any live replica's next pass takes
over from one that died. Right after the server starts, heartbeats are stale
because the server was down, not the runs, so nothing is reaped until the server itself has
been up for one timeout.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from . import _schema as s
from . import _writers
from ._db import Database
from ._duty_lock import REAPER, one_replica

log = logging.getLogger("trackd.server")


def reap(db: Database, timeout: float, now: float | None = None) -> int:
    """Mark running runs with a heartbeat older than ``timeout`` crashed; returns how many."""
    cutoff = (time.time() if now is None else now) - timeout
    runs = s.runs.c
    with db.write() as conn:
        result = conn.execute(
            update(s.runs)
            .where(runs.state == "running", runs.heartbeat_at < cutoff)
            .values(state="crashed")
        )
    return int(result.rowcount or 0)


class Reaper:
    """Runs :func:`reap` on an interval in a daemon thread: ``start()``, ``stop()``."""

    def __init__(self, db: Database, timeout: float) -> None:
        self.db, self.timeout = db, timeout
        self.interval = max(0.2, min(timeout / 4, 10.0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trackd-reaper", daemon=True)
        self._started_at = time.time()

    def start(self) -> None:
        self._started_at = time.time()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if time.time() - self._started_at < self.timeout:
                continue
            try:
                with one_replica(self.db, REAPER) as mine:
                    if not mine:  # another replica's pass is running
                        continue
                    count = reap(self.db, self.timeout) + _writers.reap(self.db, self.timeout)
            except SQLAlchemyError:
                log.exception("trackd: marking silent runs crashed failed; will retry")
                continue
            if count:
                log.warning(
                    "trackd: marked %d run(s) crashed (no heartbeat for %ss)", count, self.timeout
                )
