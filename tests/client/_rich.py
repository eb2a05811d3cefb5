"""Helpers for the rich-value tests: log through the real daemon, read the run log back."""

from __future__ import annotations

from typing import Any

import numpy as np
import trackd


def logged(value: Any, key: str = "v") -> Any:
    """``value`` as it reads back from the run log after ``log({key: value})``."""
    return logged_row({key: value})[key]


def logged_row(data: dict[str, Any]) -> dict[str, Any]:
    """The one row ``log(data)`` stored, read back from the run log."""
    run = trackd.init(project="p")
    run.log(data)
    run.finish()
    history = trackd.read_run(run.dir).history
    assert len(history) == 1
    return history[0]


def pixels(raw: dict[str, Any]) -> np.ndarray:
    """A raw image's pixels as an HxWxC (or HxW for mode L) uint8 array."""
    h, w, c = raw["shape"]
    flat = np.frombuffer(raw["pixels"], dtype=np.uint8)
    return flat.reshape((h, w) if c == 1 else (h, w, c))


def mask(raw: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(raw["pixels"], dtype=np.uint8).reshape(raw["shape"])
