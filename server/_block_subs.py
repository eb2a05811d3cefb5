"""Sub-block summaries: the min and max point of each run of :data:`SUB_POINTS` points of a
block, so a chart of a short series reads about 1/7 of its blocks' bytes (migration 12).

A block whose values are all finite floats, or all ints (a "plain" block, see
:mod:`._blocks`) gets them in ``history_blocks.subs``; other blocks get NULL and are opened
when read. The payload is columnar, little-endian::

    u8 version (1) | u32 m | i64 first_step[m] | i64 min_step[m] | f64 min_time[m]
    | f64 min_v[m] | i64 max_step[m] | f64 max_time[m] | f64 max_v[m]

Within a sub-block a tie goes to the earliest point, as everywhere in downsampling.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _blocks as b
from ._blocks import Points

SUB_POINTS = 16
FORMAT = 1
_HEAD = struct.Struct("<BI")


@dataclass(slots=True)
class Subs:
    """The sub-block summaries of one block, as arrays of the same length."""

    first_step: b.I64
    min_step: b.I64
    min_time: b.F64
    min_v: b.F64
    max_step: b.I64
    max_time: b.F64
    max_v: b.F64


def _first_where(segment: b.I64, where: np.ndarray) -> b.I64:  # type: ignore[type-arg]
    """Per segment, the position of its first True of ``where`` (each segment has one)."""
    index = np.flatnonzero(where)
    first = np.ones(len(index), dtype=bool)
    first[1:] = segment[index[1:]] != segment[index[:-1]]
    return index[first]


def encode(points: Points, mask: int) -> bytes | None:
    """The sub-block summaries of a block's ``points``; None unless the block is plain."""
    if mask not in (b.M_FINITE, b.M_INT) or not len(points):
        return None
    n = len(points)
    starts = np.arange(0, n, SUB_POINTS, dtype=np.int64)
    segment = np.arange(n, dtype=np.int64) // SUB_POINTS
    values = points.values
    lows = np.minimum.reduceat(values, starts)[segment]
    highs = np.maximum.reduceat(values, starts)[segment]
    lo = _first_where(segment, values == lows)
    hi = _first_where(segment, values == highs)
    parts = [
        points.steps[starts],
        points.steps[lo],
        points.times[lo],
        values[lo],
        points.steps[hi],
        points.times[hi],
        values[hi],
    ]
    body = b"".join(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for a in parts)
    return _HEAD.pack(FORMAT, len(starts)) + body


def decode_many(payloads: list[bytes]) -> tuple[Subs, b.I64]:
    """The summaries of many ``subs`` payloads as one set of arrays, and the index in
    ``payloads`` of each summary's block. Payloads of one length (full blocks) are decoded
    together, as one 2-D array, not one by one."""
    groups: dict[int, list[int]] = {}
    for i, data in enumerate(payloads):
        groups.setdefault(len(data), []).append(i)
    columns: list[list[np.ndarray]] = [[] for _ in range(7)]  # type: ignore[type-arg]
    owners = [np.empty(0, np.int64)]
    for size, members in groups.items():
        m = (size - _HEAD.size) // 56
        raw = np.frombuffer(b"".join(payloads[i] for i in members), np.uint8)
        raw = raw.reshape(len(members), size)
        if (raw[:, 0] != FORMAT).any():
            raise ValueError(f"a sub-block format is unknown; this server reads {FORMAT}")
        for c, kind in enumerate(("<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "<f8")):
            at = _HEAD.size + 8 * m * c
            columns[c].append(np.ascontiguousarray(raw[:, at : at + 8 * m]).view(kind).ravel())
        owners.append(np.repeat(np.array(members, dtype=np.int64), m))
    arrays: list[Any] = [np.concatenate(col) if col else np.empty(0) for col in columns]
    arrays = [a.astype(np.int64 if i in (0, 1, 4) else np.float64) for i, a in enumerate(arrays)]
    subs = Subs(*arrays)
    return subs, np.concatenate(owners)
