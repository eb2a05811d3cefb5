"""Migration 6's Python steps: history rows into blocks, and runs' config and summary as JSON;
migration 12's: the sub-block summaries of the blocks already stored.

Run inside the migration's transaction (see :mod:`._migrations`); they read the tables as
migration 4 left them and write the tables migration 6 adds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from . import _block_subs as block_subs
from . import _blocks as b
from . import _run_json
from ._history_store import BlockWriter, KeyTail
from ._values import decode_value

_ROWS = text(
    "SELECT run_pk, key_id, step, time, kind, num, ival, text FROM history "
    "ORDER BY run_pk, key_id, step"
)
_CHUNK = 64 * b.BLOCK_POINTS


class _Mover:
    """Streams the old rows, one (run, key) at a time, into blocks."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.current: tuple[int, int] | None = None
        self.tail = KeyTail(0)
        self.writer: BlockWriter | None = None
        self.steps: list[int] = []
        self.times: list[float] = []
        self.values: list[Any] = []

    def add(self, run_pk: int, key_id: int, step: int, t: float, value: Any) -> None:
        if (run_pk, key_id) != self.current:
            self.flush()
            self.writer = BlockWriter(self.conn, run_pk, subs=False)  # migration 12 adds them
            self.tail = KeyTail(key_id)
            self.current = (run_pk, key_id)
        elif len(self.steps) >= _CHUNK:
            self.flush()
        self.steps.append(step)
        self.times.append(t)
        self.values.append(value)

    def flush(self) -> None:
        if self.writer is None or not self.steps:
            return
        self.tail = self.writer.add(self.tail, b.from_values(self.steps, self.times, self.values))
        self.writer.flush()
        self.steps, self.times, self.values = [], [], []


def move_rows_to_blocks(conn: Connection) -> None:
    """Every row of the old ``history`` table, written as blocks; keys get their tails."""
    mover = _Mover(conn)
    rows = conn.execute(_ROWS.execution_options(stream_results=True, yield_per=10_000))
    for run_pk, key_id, step, t, kind, num, ival, txt in rows:
        mover.add(int(run_pk), int(key_id), int(step), float(t), decode_value(kind, num, ival, txt))
    mover.flush()


def fill_run_json(conn: Connection) -> None:
    """Every run's ``config_json`` and ``summary_json`` from its msgpack columns."""
    rows = list(conn.execute(text("SELECT id, config, summary FROM runs")))
    if not rows:
        return
    conn.execute(
        text("UPDATE runs SET config_json = :c, summary_json = :s WHERE id = :id"),
        [
            {"id": pk, "c": _run_json.dumps(config), "s": _run_json.dumps(summary)}
            for pk, config, summary in rows
        ],
    )


_PLAIN_BLOCKS = text(
    "SELECT run_pk, key_id, start_step, mask, data FROM history_blocks "
    f"WHERE subs IS NULL AND mask IN ({b.M_FINITE}, {b.M_INT})"
)
_SET_SUBS = text(
    "UPDATE history_blocks SET subs = :subs "
    "WHERE run_pk = :run_pk AND key_id = :key_id AND start_step = :start_step"
)


def add_sub_summaries(conn: Connection) -> None:
    """Every plain block's sub-block summaries (see :mod:`._block_subs`), in batches."""
    rows = conn.execute(_PLAIN_BLOCKS.execution_options(stream_results=True, yield_per=1000))
    batch: list[dict[str, Any]] = []
    for run_pk, key_id, start, mask, data in rows:
        subs = block_subs.encode(b.decode(bytes(data)), int(mask))
        batch.append({"run_pk": run_pk, "key_id": key_id, "start_step": start, "subs": subs})
        if len(batch) >= 1000:
            conn.execute(_SET_SUBS, batch)
            batch = []
    if batch:
        conn.execute(_SET_SUBS, batch)
