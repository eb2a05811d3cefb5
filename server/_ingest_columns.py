"""Columnar History in an ingest batch: checked with numpy, one row per record.

A columnar element (:mod:`trackd._wire.columns`) stands for a stretch of History records.
Its shape is checked first (a broken element, or seqs not increasing, refuses the whole
batch like a broken envelope); then each row is held to the same record rules as a History
record sent as it is (:mod:`._record_rules`): a row whose time is not finite, or that holds
a key no key may be, is refused on its own with its seq and the reason, the others apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from trackd._wire import columns as c
from trackd._wire.records import DecodeError

from . import _blocks as b
from ._record_rules import INT64_MAX, map_problem, time_problem
from .errors import InvalidRecord

COLUMNS = -1  # the pseudo record kind of a columnar element in a parsed batch
_KINDS = {c.FLOAT: b.FLOAT, c.INT: b.INT, c.BOOL: b.BOOL, c.NULL: b.NULL}
assert all(k == v for k, v in _KINDS.items()), "the wire's kinds are the blocks' kinds"


@dataclass(frozen=True, slots=True)
class HistoryColumns:
    """The checked rows of a columnar element; ``seq`` is its last row's seq."""

    rows: c.Columns
    kind: int = COLUMNS

    @property
    def seq(self) -> int:
        return int(self.rows.seq[-1])

    def after(self, last_seq: int) -> HistoryColumns | None:
        """The rows with a seq above ``last_seq`` (None if there are none)."""
        if int(self.rows.seq[0]) > last_seq:
            return self
        keep = self.rows.seq > last_seq
        return HistoryColumns(select(self.rows, keep)) if keep.any() else None

    def points(self) -> Iterator[tuple[str, b.Points]]:
        """Each key's points, in row order."""
        rows = self.rows
        for column in rows.keys:
            steps, times = rows.step, rows.time
            if column.rows is not None:
                steps, times = steps[column.rows], times[column.rows]
            kinds = column.kinds if column.kinds is not None and column.kinds.any() else None
            yield column.key, b.Points(steps, times, column.values, kinds, {})


def parse(
    index: int, element: dict[Any, Any], last: int
) -> tuple[HistoryColumns | None, list[tuple[int, str]], int]:
    """The element's valid rows, ``(seq, reason)`` of each refused row, and its last seq;
    the batch's seqs must go on increasing from ``last`` (else :class:`InvalidRecord`)."""
    try:
        rows = c.decode(element)
    except DecodeError as exc:
        raise InvalidRecord(f"record #{index} is malformed: {exc}") from exc
    seq = rows.seq
    if not (last < int(seq[0]) and int(seq[-1]) <= INT64_MAX and bool(np.all(seq[1:] > seq[:-1]))):
        raise InvalidRecord(
            f"record #{index} (columnar History) has seqs {int(seq[0])}..{int(seq[-1])} after "
            f"seq {last} or not increasing; seqs must be ints from 1 to 2**63-1, in increasing order"
        )
    reasons = _row_problems(rows)
    if not reasons:
        return HistoryColumns(rows), [], int(seq[-1])
    refused = [(int(seq[i]), reason) for i, reason in sorted(reasons.items())]
    keep = np.ones(len(seq), dtype=bool)
    keep[list(reasons)] = False
    valid = HistoryColumns(select(rows, keep)) if keep.any() else None
    return valid, refused, int(seq[-1])


def _row_problems(rows: c.Columns) -> dict[int, str]:
    """Row -> the first rule it breaks, checked in the order the record rules check."""
    reasons: dict[int, str] = {}
    for i in np.flatnonzero(~np.isfinite(rows.time)).tolist():
        reasons[i] = str(time_problem("History time", float(rows.time[i])))
    for column in rows.keys:
        problem = map_problem("History", {column.key: 0.0})
        if problem is None:
            continue
        held = range(len(rows)) if column.rows is None else column.rows.tolist()
        for i in held:
            reasons.setdefault(int(i), problem)
    return reasons


def select(rows: c.Columns, keep: npt.NDArray[np.bool_]) -> c.Columns:
    """The rows where ``keep`` is True, each key's rows renumbered; keys left with no
    value are dropped."""
    position = np.cumsum(keep) - 1
    keys = []
    for column in rows.keys:
        if column.rows is None:  # every kept row still holds the key
            mine, new_rows = keep, None
        else:
            mine = keep[column.rows]
            new_rows = position[column.rows[mine]].astype(np.uint32)
        if not mine.any():
            continue
        kinds = None if column.kinds is None else column.kinds[mine]
        keys.append(c.KeyColumn(column.key, new_rows, column.values[mine], kinds))
    return c.Columns(rows.seq[keep], rows.step[keep], rows.time[keep], keys)
