"""Downsampling a history series for charts without losing its spikes.

The step range is split into equal buckets (half as many as the points wanted, since each
bucket keeps two); each bucket keeps its lowest and its highest point, so a one-step spike
or dip survives however long the run is. A bucket's values that are not finite numbers
(NaN, infinities, strings, None) are not comparable; its first such point is kept instead, so a
loss that went NaN still shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _is_number(value: Any) -> bool:
    return (type(value) is float and math.isfinite(value)) or type(value) is int


def _bucket_picks(indices: list[int], values: Sequence[Any]) -> list[int]:
    lo = hi = odd = None
    for i in indices:
        v = values[i]
        if _is_number(v):
            if lo is None or v < values[lo]:
                lo = i
            if hi is None or v > values[hi]:
                hi = i
        elif odd is None:
            odd = i
    return [i for i in {lo, hi, odd} if i is not None]


def select_points(steps: Sequence[int], values: Sequence[Any], samples: int) -> list[int]:
    """Indices (ascending) of about ``samples`` points of the series ``steps``/``values``.

    ``steps`` must be ascending. Example::

        >>> select_points([0, 1, 2, 3], [1.0, 9.0, 1.0, 1.0], 2)
        [0, 1]
    """
    n = len(steps)
    if samples <= 0 or n <= samples:
        return list(range(n))
    buckets = max(1, samples // 2)
    first, width = steps[0], (steps[-1] - steps[0] + 1) / buckets
    chosen: list[int] = []
    current: list[int] = []
    bucket = 0
    for i, step in enumerate(steps):
        b = min(int((step - first) / width), buckets - 1)
        if b != bucket and current:
            chosen.extend(_bucket_picks(current, values))
            current = []
        bucket = b
        current.append(i)
    chosen.extend(_bucket_picks(current, values))
    return sorted(chosen)
