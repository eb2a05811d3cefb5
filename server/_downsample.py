"""Downsampling a key's history for charts, deterministically, without losing its spikes.

The step range asked for is split into equal buckets (half as many as the points wanted,
since each bucket keeps two); each bucket keeps its lowest and its highest point, so a
one-step spike or dip survives however long the run is. Values that are not finite numbers
(NaN, infinities, strings, bools, None, maps) are not comparable; a bucket's first such point
is kept instead, so a loss that went NaN still shows. The same request always gives the
same points: nothing is random, and a bucket's ties go to its earliest point.

The cost grows with the points shown, not the points logged: a bucket's min and max come
from the summaries of the blocks, or of the 16-point sub-blocks, that fall in it (each in the
bucket of its first step); only blocks cut by the range's ends, and blocks holding values
that are not plain numbers, are opened and bucketed point by point (:mod:`._series_read`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection

from . import _blocks as b
from ._blocks import Points
from ._series_read import read_series


class Series:
    """Chosen points of one key, in step order, with their exact values: as arrays
    (``points``, when they came from blocks) and as lists (made when first asked for)."""

    __slots__ = ("_lists", "points")

    def __init__(
        self,
        steps: list[int] | None = None,
        times: list[float] | None = None,
        values: list[Any] | None = None,
        points: Points | None = None,
    ) -> None:
        self.points = points
        self._lists = None if points is not None else (steps or [], times or [], values or [])

    @classmethod
    def of(cls, points: Points) -> Series:
        return cls(points=points)

    def _as_lists(self) -> tuple[list[int], list[float], list[Any]]:
        if self._lists is None:
            assert self.points is not None
            p = self.points
            self._lists = (p.steps.tolist(), p.times.tolist(), values_of(p))
        return self._lists

    @property
    def steps(self) -> list[int]:
        return self._as_lists()[0]

    @property
    def times(self) -> list[float]:
        return self._as_lists()[1]

    @property
    def values(self) -> list[Any]:
        return self._as_lists()[2]

    def __len__(self) -> int:
        return len(self.points) if self.points is not None else len(self.steps)


def values_of(points: Points) -> list[Any]:
    """The exact Python values of ``points``."""
    if points.kinds is None:
        return points.values.tolist()
    return [points.value(i) for i in range(len(points))]


def _buckets(steps: b.I64, first: int, last: int, buckets: int) -> b.I64:
    width = (last - first + 1) / buckets
    index = ((steps - first) / width).astype(np.int64)
    return np.clip(index, 0, buckets - 1)


def _first_in_segment(segment: b.I64, where: np.ndarray[Any, Any]) -> b.I64:
    """Positions of the first True of ``where`` in each segment (segments are ascending)."""
    index = np.flatnonzero(where)
    if not len(index):
        return index
    owner = segment[index]
    first = np.ones(len(index), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    return index[first]


def pick(points: Points, first: int, last: int, buckets: int) -> b.I64:
    """Positions (ascending) of each bucket's min, max and first non-number, over steps
    ``first`` to ``last`` split into ``buckets``. Steps are ascending, so each bucket is a
    run of positions: a few vectorized passes, no sorting."""
    n = len(points)
    if not n:
        return np.empty(0, np.int64)
    bucket = _buckets(points.steps, first, last, buckets)
    change = np.ones(n, dtype=bool)
    change[1:] = bucket[1:] != bucket[:-1]
    starts = np.flatnonzero(change)
    segment = np.cumsum(change) - 1
    numeric = points.numeric()
    chosen = [_first_in_segment(segment, ~numeric)]
    if numeric.any():
        low = np.where(numeric, points.values, np.inf)
        high = np.where(numeric, points.values, -np.inf)
        lows = np.minimum.reduceat(low, starts)[segment]
        highs = np.maximum.reduceat(high, starts)[segment]
        chosen.append(_first_in_segment(segment, numeric & (low == lows)))
        chosen.append(_first_in_segment(segment, numeric & (high == highs)))
    keep = np.zeros(n, dtype=bool)  # ascending and unique, without a sort
    for index in chosen:
        keep[index] = True
    return np.flatnonzero(keep)


def downsample(points: Points, samples: int) -> Points:
    """About ``samples`` points of ``points`` (all of them if they are no more than that)."""
    if samples <= 0 or len(points) <= samples:
        return points
    first, last = int(points.steps[0]), int(points.steps[-1])
    return points.take(pick(points, first, last, max(1, samples // 2)))


def read(conn: Connection, run_pk: int, key_id: int, lo: int, hi: int, samples: int) -> Series:
    """A key's points with steps ``lo`` to ``hi``, downsampled to about ``samples``."""
    return read_keys(conn, run_pk, [key_id], lo, hi, samples)[key_id]


def read_keys(
    conn: Connection, run_pk: int, key_ids: list[int], lo: int, hi: int, samples: int
) -> dict[int, Series]:
    """Several keys of a run, each downsampled on its own (see :mod:`._series_read`)."""
    got = read_series(conn, [(run_pk, key_id) for key_id in key_ids], lo, hi, samples)
    return {key_id: Series.of(points) for key_id, points in zip(key_ids, got, strict=True)}


def select_points(steps: list[int], values: list[Any], samples: int) -> list[int]:
    """Positions (ascending) of about ``samples`` points of a series held in lists.

    ``steps`` must be ascending. Example::

        >>> select_points([0, 1, 2, 3], [1.0, 9.0, 1.0, 1.0], 2)
        [0, 1]
    """
    if samples <= 0 or len(steps) <= samples:
        return list(range(len(steps)))
    points = b.from_values(list(steps), [0.0] * len(steps), list(values))
    return [int(i) for i in pick(points, steps[0], steps[-1], max(1, samples // 2))]
