"""Sizes of the scale tests: small by default, the issue's full size with TRACKD_SCALE=full.

The small size keeps `make test` within its time budget and still exercises every code path
(several blocks, several batches); the assertions are the same at both sizes.
"""

from __future__ import annotations

import os


def full_scale() -> bool:
    return os.environ.get("TRACKD_SCALE", "") == "full"


def scaled(small: int, full: int) -> int:
    """``full`` when TRACKD_SCALE=full is set, else ``small``."""
    return full if full_scale() else small
