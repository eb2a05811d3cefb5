"""History blocks: a run's key stored as blocks of consecutive steps in compact arrays.

A block holds up to :data:`BLOCK_POINTS` points of one (run, key), in step order, and a
summary that downsampled reads use without opening the block (see :mod:`._downsample`).
The payload (``data``) is columnar, little-endian::

    u8 version (1) | u8 flags | u32 n | i64 steps[n] | f64 times[n] | f64 values[n]
    | u8 kinds[n] (flags & 1) | msgpack map {index: value} (flags & 2)

Each point has a kind; a value that float64 does not hold exactly is kept in the msgpack map:

    kind   values[i]          what it is
    FLOAT  the float          float, NaN and infinities included (bit-exact)
    INT    the int as float   int with |v| <= 2**53
    BOOL   0.0 / 1.0          bool
    NULL   0.0                None
    EXTRA  0.0                anything else (str, int beyond 2**53, map, list): in the map

``mask`` (in the summary) says which kinds a block holds, as bits :data:`M_FINITE` ...
:data:`M_EXTRA`; a block whose mask is only finite floats, or only ints, is "plain": its
``min``/``max``/``first``/``last`` summary values are exact.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

BLOCK_POINTS = 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FORMAT = 1
FLOAT, INT, BOOL, NULL, EXTRA = range(5)
M_FINITE, M_INT, M_BOOL, M_NULL, M_EXTRA, M_NONFINITE = (1 << i for i in range(6))
_KIND_MASK = (M_FINITE, M_INT, M_BOOL, M_NULL, M_EXTRA)
_HEAD = struct.Struct("<BBI")
_HAS_KINDS, _HAS_EXTRAS = 1, 2
_EXACT_INT = 2**53

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


@dataclass(slots=True)
class Points:
    """Points of one key, in step order: arrays, plus the exact values floats cannot hold."""

    steps: I64
    times: F64
    values: F64
    kinds: U8 | None  # None: every point is FLOAT
    extras: dict[int, Any]

    def __len__(self) -> int:
        return len(self.steps)

    def value(self, i: int) -> Any:
        """The exact Python value of point ``i``."""
        kind = FLOAT if self.kinds is None else int(self.kinds[i])
        if kind == FLOAT:
            return float(self.values[i])
        if kind == INT:
            return int(self.values[i])
        if kind == BOOL:
            return bool(self.values[i])
        if kind == NULL:
            return None
        return self.extras[i]

    def slice(self, lo: int, hi: int) -> Points:
        """Points ``lo`` to ``hi`` (exclusive)."""
        kinds = None if self.kinds is None else self.kinds[lo:hi]
        extras = {i - lo: v for i, v in self.extras.items() if lo <= i < hi}
        return Points(self.steps[lo:hi], self.times[lo:hi], self.values[lo:hi], kinds, extras)

    def take(self, index: I64) -> Points:
        """The points at ``index`` (ascending positions)."""
        kinds = None if self.kinds is None else self.kinds[index]
        extras: dict[int, Any] = {}
        if self.extras:
            positions = {int(i): n for n, i in enumerate(index)}
            extras = {positions[i]: v for i, v in self.extras.items() if i in positions}
        return Points(self.steps[index], self.times[index], self.values[index], kinds, extras)

    def numeric(self) -> npt.NDArray[np.bool_]:
        """True where a point is a finite float or an int (comparable for min and max)."""
        finite = np.isfinite(self.values)
        if self.kinds is None:
            return finite
        return finite & ((self.kinds == FLOAT) | (self.kinds == INT))


def empty() -> Points:
    return Points(np.empty(0, np.int64), np.empty(0), np.empty(0), None, {})


def _classify(value: Any) -> tuple[int, float]:
    t = type(value)
    if t is float:
        return FLOAT, value
    if t is int:
        return (INT, float(value)) if -_EXACT_INT <= value <= _EXACT_INT else (EXTRA, 0.0)
    if t is bool:
        return BOOL, float(value)
    if value is None:
        return NULL, 0.0
    return EXTRA, 0.0


def from_values(steps: list[int], times: list[float], values: list[Any]) -> Points:
    """Points from Python lists (steps ascending and unique)."""
    s = np.array(steps, dtype=np.int64)
    t = np.array(times, dtype=np.float64)
    if set(map(type, values)) <= {float}:  # the common case, checked at C speed
        return Points(s, t, np.array(values, dtype=np.float64), None, {})
    kinds = np.zeros(len(values), dtype=np.uint8)
    floats = np.zeros(len(values), dtype=np.float64)
    extras: dict[int, Any] = {}
    for i, v in enumerate(values):
        kind, f = _classify(v)
        kinds[i], floats[i] = kind, f
        if kind == EXTRA:
            extras[i] = v
    return Points(s, t, floats, kinds, extras)


def concat(parts: list[Points]) -> Points:
    """The points of ``parts`` one after another."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    kinds = None
    if any(p.kinds is not None for p in parts):
        kinds = np.concatenate([_kinds_of(p) for p in parts])
    extras: dict[int, Any] = {}
    offset = 0
    for p in parts:
        extras.update({i + offset: v for i, v in p.extras.items()})
        offset += len(p)
    return Points(
        np.concatenate([p.steps for p in parts]),
        np.concatenate([p.times for p in parts]),
        np.concatenate([p.values for p in parts]),
        kinds,
        extras,
    )


def _kinds_of(p: Points) -> U8:
    return p.kinds if p.kinds is not None else np.zeros(len(p), dtype=np.uint8)


def merge(old: Points, new: Points) -> Points:
    """``old`` and ``new`` in step order; at a step both hold, ``new``'s point wins."""
    both = concat([old, new])
    # stable sort by step, then keep the last occurrence of each step (new comes after old)
    order = np.argsort(both.steps, kind="stable")
    steps = both.steps[order]
    last = np.ones(len(steps), dtype=bool)
    last[:-1] = steps[1:] != steps[:-1]
    return both.take(order[last])


def encode(points: Points) -> bytes:
    """The block payload of ``points``."""
    flags = 0
    parts = [
        points.steps.astype("<i8", copy=False).tobytes(),
        points.times.astype("<f8", copy=False).tobytes(),
        points.values.astype("<f8", copy=False).tobytes(),
    ]
    if points.kinds is not None and points.kinds.any():
        flags |= _HAS_KINDS
        parts.append(points.kinds.tobytes())
    if points.extras:
        flags |= _HAS_EXTRAS
        parts.append(msgpack.packb(points.extras, use_bin_type=True))
    return _HEAD.pack(FORMAT, flags, len(points)) + b"".join(parts)


def decode(data: bytes) -> Points:
    """The points of a block payload."""
    version, flags, n = _HEAD.unpack_from(data)
    if version != FORMAT:
        raise ValueError(f"history block format {version} is unknown; this server reads {FORMAT}")
    at = _HEAD.size
    # read-only views of the payload (no copy; nothing writes into a block's arrays)
    steps = np.frombuffer(data, np.dtype("<i8"), n, at).astype(np.int64, copy=False)
    times = np.frombuffer(data, np.dtype("<f8"), n, at + 8 * n).astype(np.float64, copy=False)
    values = np.frombuffer(data, np.dtype("<f8"), n, at + 16 * n).astype(np.float64, copy=False)
    at += 24 * n
    kinds = None
    if flags & _HAS_KINDS:
        kinds = np.frombuffer(data, np.uint8, n, at).copy()
        at += n
    extras: dict[int, Any] = {}
    if flags & _HAS_EXTRAS:
        extras = msgpack.unpackb(data[at:], raw=False, strict_map_key=False)
    return Points(steps, times, values, kinds, extras)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a block's row says about its points without opening them."""

    start_step: int
    end_step: int
    n: int
    mask: int
    min_v: float | None
    min_step: int | None
    min_time: float | None
    max_v: float | None
    max_step: int | None
    max_time: float | None
    first_v: float | None
    last_v: float | None

    @property
    def plain(self) -> bool:
        """True if min/max/first/last are the points' exact values (only floats or only ints)."""
        return self.mask in (M_FINITE, M_INT)

    def value(self, v: float | None) -> Any:
        """A summary value as the Python value it stands for (int for a block of ints)."""
        return int(v) if v is not None and self.mask == M_INT else v


def mask_of(points: Points) -> int:
    """The kinds ``points`` hold, as mask bits."""
    finite = np.isfinite(points.values)
    mask = 0
    if points.kinds is None:
        if finite.any():
            mask |= M_FINITE
        if not finite.all():
            mask |= M_NONFINITE
        return mask
    for kind, bit in enumerate(_KIND_MASK):
        chosen = points.kinds == kind
        if kind == FLOAT:
            if (chosen & finite).any():
                mask |= M_FINITE
            if (chosen & ~finite).any():
                mask |= M_NONFINITE
        elif chosen.any():
            mask |= bit
    return mask


def summarize(points: Points) -> Summary:
    """The summary of a non-empty block."""
    values = points.values
    lo: int | None = None
    hi: int | None = None
    if points.kinds is None and bool(np.isfinite(values).all()):  # the common block
        lo, hi, mask = int(values.argmin()), int(values.argmax()), M_FINITE
    else:
        numeric = points.numeric()
        if numeric.any():
            lo = int(np.argmin(np.where(numeric, values, np.inf)))
            hi = int(np.argmax(np.where(numeric, values, -np.inf)))
        mask = mask_of(points)
    first, last = points.value(0), points.value(len(points) - 1)
    return Summary(
        int(points.steps[0]),
        int(points.steps[-1]),
        len(points),
        mask,
        None if lo is None else float(values[lo]),
        None if lo is None else int(points.steps[lo]),
        None if lo is None else float(points.times[lo]),
        None if hi is None else float(values[hi]),
        None if hi is None else int(points.steps[hi]),
        None if hi is None else float(points.times[hi]),
        _as_float(first),
        _as_float(last),
    )


def _as_float(v: Any) -> float | None:
    if type(v) in (int, float) and math.isfinite(v):
        return float(v)
    return None
