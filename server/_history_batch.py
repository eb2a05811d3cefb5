"""One ingest batch's history points, gathered key by key in seq order.

History arrives as records (one Python map per row) and as columnar elements (arrays per
key, :mod:`._ingest_columns`). Both end up as :class:`~._blocks.Points` per key, kept in the
order of their seqs, so where a step is logged twice the later point wins when the blocks
are written (:func:`._history_store.normalized`).
"""

from __future__ import annotations

from trackd._wire import records as p

from . import _blocks as b
from ._ingest_columns import HistoryColumns

_ABSENT = object()  # a key a History row does not hold


class BatchPoints:
    """Collects History rows and columns; :meth:`by_key` gives each key's points."""

    def __init__(self) -> None:
        self._parts: dict[str, list[b.Points]] = {}  # by key, in the order first seen
        self._rows: list[p.History] = []  # rows not yet turned into columns
        self._row_keys: dict[str, None] = {}

    def __bool__(self) -> bool:
        return bool(self._parts or self._rows)

    def add_row(self, record: p.History) -> None:
        self._rows.append(record)
        self._row_keys.update(record.data)  # only the keys matter here

    def add_columns(self, columns: HistoryColumns) -> None:
        self._flush_rows()
        for key, points in columns.points():
            self._parts.setdefault(key, []).append(points)

    def by_key(self) -> dict[str, b.Points]:
        """Every key's points of the batch, in seq order."""
        self._flush_rows()
        return {key: b.concat(parts) for key, parts in self._parts.items()}

    def _flush_rows(self) -> None:
        """The rows gathered so far, as columns: one list comprehension per key (far cheaper
        than touching each value in a Python loop)."""
        if not self._rows:
            return
        datas = [r.data for r in self._rows]
        steps = [r.step for r in self._rows]
        times = [float(r.time) for r in self._rows]
        for key in self._row_keys:
            values = [d.get(key, _ABSENT) for d in datas]
            if any(v is _ABSENT for v in values):
                keep = [i for i, v in enumerate(values) if v is not _ABSENT]
                column = b.from_values(
                    [steps[i] for i in keep], [times[i] for i in keep], [values[i] for i in keep]
                )
            else:
                column = b.from_values(steps, times, values)
            self._parts.setdefault(key, []).append(column)
        self._rows, self._row_keys = [], {}
