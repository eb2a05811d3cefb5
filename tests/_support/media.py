"""Raw media values built by hand, as :mod:`trackd._wire.media` states them, and a way to log
them: a stand-in for ``trackd.Image`` (built on another branch) until it lands.

::

    log_raw(run, {"examples": raw_image(pixels, caption="a cat")})
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import trackd
from PIL import Image
from trackd._wire import records as p


def raw_image(pixels: np.ndarray, **optional: Any) -> dict[str, Any]:
    """A raw image (HxWxC uint8, C in 1, 3, 4), with optional fields (caption, masks...)."""
    assert pixels.dtype == np.uint8 and pixels.ndim == 3
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    value = {
        "_type": "image",
        "pixels": np.ascontiguousarray(pixels).tobytes(),
        "shape": list(pixels.shape),
        "mode": mode,
    }
    value.update(optional)
    return value


def raw_mask(classes: np.ndarray, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A raw mask: one uint8 class id per pixel (HxW)."""
    assert classes.dtype == np.uint8 and classes.ndim == 2
    mask: dict[str, Any] = {"pixels": classes.tobytes(), "shape": list(classes.shape)}
    if labels is not None:
        mask["class_labels"] = labels
    return mask


def log_raw(run: trackd.Run, data: dict[str, Any], kind: int = p.HISTORY_MEDIA) -> None:
    """Commit ``data`` (raw values allowed) as the row of the run's current step, as a
    HistoryMedia record (or ``kind``); the step advances by one as with ``log()``."""
    with run._lock:
        record = p.HistoryMedia(kind, run.id, run._next_seq(), run._step, time.time(), data)
        run._emit_record(record)
        run._step += 1


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of a PNG file (HxWxC, C kept as stored; a gray image gets C = 1)."""
    image = np.asarray(Image.open(io.BytesIO(data)))
    return image[:, :, None] if image.ndim == 2 else image
