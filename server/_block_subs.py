"""Sub-block summaries: the min and max point of each run of :data:`SUB_POINTS` points of a
block, so a chart of a short series reads about 1/7 of its blocks' bytes (migration 14).

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


def decode(data: bytes) -> Subs:
    """The summaries in a ``subs`` payload."""
    version, m = _HEAD.unpack_from(data)
    if version != FORMAT:
        raise ValueError(f"sub-block format {version} is unknown; this server reads {FORMAT}")
    at = _HEAD.size

    def column(i: int, kind: str) -> np.ndarray:  # type: ignore[type-arg]
        return np.frombuffer(data, np.dtype(kind), m, at + 8 * m * i)

    return Subs(
        column(0, "<i8"),
        column(1, "<i8"),
        column(2, "<f8"),
        column(3, "<f8"),
        column(4, "<i8"),
        column(5, "<f8"),
        column(6, "<f8"),
    )
