"""Reading many (run, key) series at once, each downsampled on its own, in three queries.

The rules are :mod:`._downsample`'s; this module is how they are met for any number of
series at the cost of the points shown. One query reads the summaries of every block in
range (as arrays, through the database driver's own cursor), a second the sub-block
summaries (:mod:`._block_subs`) of the series that need them, a third the few blocks that
must be opened. Each series reads at the coarsest level that still gives every bucket a
summary:

- all its points, when they are no more than the samples asked for;
- block summaries, when the range spans at least as many blocks as buckets;
- sub-block summaries (16 points each), when those are at least as many as buckets;
- otherwise its blocks, opened and bucketed point by point.

A summary falls in the bucket of its first step. Blocks cut by the range's ends, blocks
holding values other than plain numbers, and blocks stored before migration 12 without
sub-block summaries are opened and bucketed point by point. Every series' candidates are
then chosen together with numpy: per bucket the lowest and the highest number (the
earliest on a tie) and the first non-number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection

from . import _block_subs as block_subs
from . import _blocks as b
from ._blocks import Points
from ._history_store import trim

SeriesId = tuple[int, int]  # (run_pk, key_id)
WHOLE, BLOCKS, SUBS, OPEN = range(4)
_SUMMARIES = (
    "SELECT h.key_id, h.start_step, h.end_step, h.n, h.mask, COALESCE(h.min_v, 0), "
    "COALESCE(h.min_step, 0), COALESCE(h.min_time, 0), COALESCE(h.max_v, 0), "
    "COALESCE(h.max_step, 0), COALESCE(h.max_time, 0) {source} ORDER BY h.key_id, h.start_step"
)
_PLAIN = (b.M_FINITE, b.M_INT)


def _ints(values: Sequence[int] | set[int]) -> str:
    return ",".join(str(int(v)) for v in sorted(values))


def _source(ids: Sequence[SeriesId], lo: int, hi: int) -> str:
    """FROM and WHERE of the blocks of ``ids`` overlapping ``lo``..``hi``: each key found by
    its id, then its blocks by their primary key (one index seek per series)."""
    keys = _ints({key for _, key in ids})
    return (
        "FROM run_keys k JOIN history_blocks h ON h.run_pk = k.run_pk AND h.key_id = k.id "
        f"WHERE k.id IN ({keys}) AND h.end_step >= {int(lo)} AND h.start_step <= {int(hi)}"
    )


def _fetch(conn: Connection, sql: str, binary: bool = False) -> list[Any]:
    """Rows of ``sql`` (no parameters) through the driver's cursor: tuples, no row objects;
    on PostgreSQL in the binary format when ``binary`` (bytea as raw bytes, not hex)."""
    raw: Any = conn.connection.driver_connection  # the transaction's own connection
    if conn.dialect.name == "postgresql":
        with raw.cursor(binary=binary) as cursor:
            cursor.execute(sql)
            return cursor.fetchall()  # type: ignore[no-any-return]
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        cursor.close()


@dataclass(slots=True)
class _Blocks:
    """The block summaries read, as columns; one series is a run of rows."""

    key: b.I64
    start: b.I64
    end: b.I64
    n: b.I64
    mask: b.I64
    min_v: b.F64
    min_step: b.I64
    min_time: b.F64
    max_v: b.F64
    max_step: b.I64
    max_time: b.F64

    @classmethod
    def of(cls, rows: list[Any]) -> _Blocks:
        cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 11
        ints = (np.int64, np.int64, np.int64, np.int64, np.int64, np.float64, np.int64)
        kinds = ints + (np.float64, np.float64, np.int64, np.float64)
        arrays: list[Any] = [
            np.array(col, dtype=kind) for col, kind in zip(cols, kinds, strict=True)
        ]
        return cls(*arrays)


@dataclass
class _Plan:
    """What one request reads: per series its mode and rows, and the candidates so far."""

    lo: int
    hi: int
    samples: int
    buckets: int
    count: int  # series
    first: b.I64 = field(init=False)  # each series' bucketed step range
    last: b.I64 = field(init=False)
    parts: list[Points] = field(default_factory=list)
    part_series: list[b.I64] = field(default_factory=list)
    part_at: list[b.I64] = field(default_factory=list)  # the step each is bucketed by
    opened: dict[tuple[int, int], int] = field(default_factory=dict)  # (key, start) -> series
    subs: dict[tuple[int, int], int] = field(default_factory=dict)
    whole: dict[int, list[Points]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.first = np.zeros(self.count, np.int64)
        self.last = np.zeros(self.count, np.int64)

    def add(self, points: Points, series: int | b.I64, at: b.I64) -> None:
        """Candidates of ``series``, each bucketed by the step in ``at``."""
        self.parts.append(points)
        self.part_series.append(np.broadcast_to(np.asarray(series, np.int64), len(points)))
        self.part_at.append(at)

    def bucket(self, at: b.I64, series: b.I64) -> b.I64:
        """The bucket of step ``at`` in its series' range (arrays of the same length)."""
        first, last = self.first[series], self.last[series]
        width = (last - first + 1) / self.buckets
        return np.clip(((at - first) / width).astype(np.int64), 0, self.buckets - 1)  # type: ignore[no-any-return]

    def wide(self, start: b.I64, end: b.I64, series: b.I64) -> Any:
        """True for a summary whose steps may cover a whole bucket: it cannot stand for it
        (a bucket with points must show one), so its block is opened instead."""
        return self.bucket(end, series) - self.bucket(start, series) >= 2

    def buckets_of(self, series: b.I64) -> b.I64:
        """Every candidate's bucket, numbered across series (``series * buckets + bucket``)."""
        return series * self.buckets + self.bucket(np.concatenate(self.part_at), series)  # type: ignore[no-any-return]


def _mode(blocks: _Blocks, a: int, z: int, samples: int, buckets: int) -> int:
    total = int(blocks.n[a:z].sum())
    if samples <= 0 or total <= samples:
        return WHOLE
    if z - a >= buckets:
        return BLOCKS
    if int(((blocks.n[a:z] + block_subs.SUB_POINTS - 1) // block_subs.SUB_POINTS).sum()) >= buckets:
        return SUBS
    return OPEN


def _firsts(group: b.I64) -> b.I64:
    """Positions where a run of equal ``group`` values starts."""
    first = np.ones(len(group), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    return np.flatnonzero(first)


def _first_of_segment(segment: b.I64, where: Any) -> b.I64:
    """Positions of the first True of ``where`` in each segment (segments ascending)."""
    index = np.flatnonzero(where)
    return index[_firsts(segment[index])] if len(index) else index


def _choose(points: Points, group: b.I64) -> b.I64:
    """Positions of each group's lowest and highest number (the earliest step on a tie) and
    its first non-number: the same picks in any order of the candidates. One sort by group
    and step, then a pass per pick over the runs of each group."""
    order = np.lexsort((points.steps, group))
    ordered = group[order]
    change = np.ones(len(order), dtype=bool)
    change[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(change)
    segment = np.cumsum(change) - 1
    numeric = points.numeric()[order]
    values = points.values[order]
    picks = [_first_of_segment(segment, ~numeric)]
    if numeric.any():
        low = np.where(numeric, values, np.inf)
        high = np.where(numeric, values, -np.inf)
        lows = np.minimum.reduceat(low, starts)[segment]
        highs = np.maximum.reduceat(high, starts)[segment]
        picks.append(_first_of_segment(segment, numeric & (low == lows)))
        picks.append(_first_of_segment(segment, numeric & (high == highs)))
    keep = np.zeros(len(order), dtype=bool)
    for index in picks:
        keep[order[index]] = True
    return np.flatnonzero(keep)


def _unit_points(steps: list[b.I64], times: list[Any], values: list[Any], ints: Any) -> Points:
    """Summaries' min and max points, interleaved; ``ints`` marks summaries of int blocks."""

    def pair(two: list[Any], dtype: Any) -> Any:
        out = np.empty(2 * len(two[0]), dtype=dtype)
        out[0::2], out[1::2] = two
        return out

    kinds = None
    if np.any(ints):
        kinds = np.repeat(np.where(ints, b.INT, b.FLOAT).astype(np.uint8), 2)
    return Points(
        pair(steps, np.int64), pair(times, np.float64), pair(values, np.float64), kinds, {}
    )


def read_series(
    conn: Connection, ids: Sequence[SeriesId], lo: int, hi: int, samples: int
) -> list[Points]:
    """Each series' points with steps ``lo`` to ``hi``, downsampled to about ``samples``
    (all of them when ``samples`` <= 0), in the order of ``ids``."""
    out = [b.empty() for _ in ids]
    if not ids:
        return out
    plan = _Plan(lo, hi, samples, max(1, samples // 2), len(ids))
    blocks = _Blocks.of(_fetch(conn, _SUMMARIES.format(source=_source(ids, lo, hi))))
    if not len(blocks.key):
        return out
    _plan_blocks(plan, blocks, {key: i for i, (_, key) in enumerate(ids)})
    _read_subs(conn, plan, ids)
    _read_opened(conn, plan, ids)
    for s, parts in plan.whole.items():
        out[s] = b.concat(parts)
    if plan.parts:
        points = b.concat(plan.parts)
        series = np.concatenate(plan.part_series)
        chosen = _choose(points, plan.buckets_of(series))
        order = chosen[np.lexsort((points.steps[chosen], series[chosen]))]
        keep = np.ones(len(order), dtype=bool)  # a summary whose min is its max: one point
        keep[1:] = (series[order[1:]] != series[order[:-1]]) | (
            points.steps[order[1:]] != points.steps[order[:-1]]
        )
        order = order[keep]
        picked, owner = points.take(order), series[order]
        bounds = np.searchsorted(owner, np.arange(len(ids) + 1))
        for s in np.unique(owner).tolist():
            out[s] = picked.slice(int(bounds[s]), int(bounds[s + 1]))
    return out


def _plan_blocks(plan: _Plan, blocks: _Blocks, index: dict[int, int]) -> None:
    """Each series' mode; the block summaries used as they are become candidates."""
    starts = _firsts(blocks.key)
    ends = np.append(starts[1:], len(blocks.key))
    series = np.array([index[int(k)] for k in blocks.key[starts]], dtype=np.int64)
    modes = np.array(
        [
            _mode(blocks, int(a), int(z), plan.samples, plan.buckets)
            for a, z in zip(starts, ends, strict=True)
        ],
        dtype=np.int64,
    )
    plan.first[series] = np.maximum(plan.lo, blocks.start[starts])
    plan.last[series] = np.minimum(plan.hi, blocks.end[ends - 1])
    row_series = np.repeat(series, ends - starts)
    row_mode = np.repeat(modes, ends - starts)
    inner = np.isin(blocks.mask, _PLAIN) & (blocks.start >= plan.lo) & (blocks.end <= plan.hi)
    wide = plan.wide(blocks.start, blocks.end, row_series)
    units = np.flatnonzero(inner & (row_mode == BLOCKS) & ~wide)
    if len(units):
        u = units
        points = _unit_points(
            [blocks.min_step[u], blocks.max_step[u]],
            [blocks.min_time[u], blocks.max_time[u]],
            [blocks.min_v[u], blocks.max_v[u]],
            blocks.mask[u] == b.M_INT,
        )
        plan.add(points, np.repeat(row_series[u], 2), np.repeat(blocks.start[u], 2))
    subs = inner & (row_mode == SUBS)
    for r in np.flatnonzero(~subs & ~(inner & (row_mode == BLOCKS) & ~wide)).tolist():
        plan.opened[(int(blocks.key[r]), int(blocks.start[r]))] = int(row_series[r])
    for r in np.flatnonzero(subs).tolist():
        plan.subs[(int(blocks.key[r]), int(blocks.start[r]))] = int(row_series[r])
    for s in series[modes == WHOLE].tolist():
        plan.whole[s] = []


def _read_subs(conn: Connection, plan: _Plan, ids: Sequence[SeriesId]) -> None:
    """The sub-block summaries of the blocks planned so; a block without them is opened."""
    if not plan.subs:
        return
    wanted = [ids[s] for s in sorted(set(plan.subs.values()))]
    sql = f"SELECT h.key_id, h.start_step, h.end_step, h.mask, h.subs {_source(wanted, plan.lo, plan.hi)}"
    owners: list[int] = []
    ints: list[bool] = []
    ends: list[int] = []
    names: list[tuple[int, int]] = []
    payloads: list[bytes] = []
    for key, start, end, mask, data in _fetch(conn, sql, binary=True):
        s = plan.subs.get((int(key), int(start)))
        if s is None:
            continue
        if data is None:
            plan.opened[(int(key), int(start))] = s
            continue
        owners.append(s)
        ints.append(int(mask) == b.M_INT)
        ends.append(int(end))
        names.append((int(key), int(start)))
        payloads.append(bytes(data))
    if not payloads:
        return
    subs, block = block_subs.decode_many(payloads)
    series = np.array(owners, dtype=np.int64)[block]
    # a sub-block ends before the next one starts, the last one where its block ends
    last = np.array(ends, dtype=np.int64)[block]
    same = block[1:] == block[:-1]
    last[:-1][same] = subs.first_step[1:][same] - 1
    wide = plan.wide(subs.first_step, last, series)
    for i in np.unique(block[wide]).tolist():
        plan.opened[names[i]] = owners[i]
    keep = ~np.isin(block, block[wide])
    subs = block_subs.Subs(*(getattr(subs, f)[keep] for f in block_subs.Subs.__slots__))
    block, series = block[keep], series[keep]
    points = _unit_points(
        [subs.min_step, subs.max_step],
        [subs.min_time, subs.max_time],
        [subs.min_v, subs.max_v],
        np.array(ints, dtype=bool)[block],
    )
    plan.add(points, np.repeat(series, 2), np.repeat(subs.first_step, 2))


def _read_opened(conn: Connection, plan: _Plan, ids: Sequence[SeriesId]) -> None:
    """The blocks to open: their points, trimmed to the range, whole or as candidates."""
    if not plan.opened:
        return
    wanted = [ids[s] for s in sorted(set(plan.opened.values()))]
    starts = _ints({start for _, start in plan.opened})
    sql = (
        f"SELECT h.key_id, h.start_step, h.data {_source(wanted, plan.lo, plan.hi)} "
        f"AND h.start_step IN ({starts}) ORDER BY h.key_id, h.start_step"
    )
    for key, start, data in _fetch(conn, sql, binary=True):
        s = plan.opened.get((int(key), int(start)))
        if s is None:
            continue
        points = trim(b.decode(data), plan.lo, plan.hi)
        if s in plan.whole:
            plan.whole[s].append(points)
        else:
            plan.add(points, s, points.steps)
