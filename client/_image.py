"""``trackd.Image``: pixels (or an image file) to log, with caption, boxes and masks.

The training thread only takes the pixels: a contiguous uint8 array is not copied here (the
record encoder copies it once, when the image is logged), anything else is converted once.
PNG encoding happens later, in the daemon. Value ranges follow wandb:

- numpy arrays (and other array-likes): size-1 dimensions are dropped; if the minimum is
  negative the values are rescaled to 0-1 by (x - min) / (max - min); if then the maximum is
  at most 1 they are multiplied by 255; then clipped to 0-255 (``Image.to_uint8``);
- torch tensors: normalised to 0-1 over the whole batch by their min and max, times 255, a
  batch laid out as a grid (see :mod:`trackd._grid`);
- PIL images are taken as they are; an image file's bytes are kept in their encoding.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._grid import tensor_pixels
from ._overlays import Classes, check_boxes, check_classes, check_masks
from ._wire import media
from ._wire.limits import text_problem

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


class Image:
    """An image to log: ``trackd.log({"examples": trackd.Image(pixels, caption="a cat")})``.

    ``data_or_path``: a numpy array (HxW, HxWx1, HxWx3, HxWx4), a PIL image, a torch tensor
    (HxW, CxHxW, or an NxCxHxW batch shown as a grid; any device and dtype), a path to an
    image file, or another ``Image`` (its pixels, with new captions and overlays). ``mode``
    is a PIL mode to convert the pixels to (e.g. ``"L"``). ``boxes``, ``masks`` and
    ``classes`` take wandb's formats (see :mod:`trackd._overlays`). A contiguous uint8
    array is read when the image is logged, not copied before: log it before changing it.

    Example::

        trackd.log({"pred": trackd.Image(batch.float(), caption="epoch 3"),
                    "seg": trackd.Image(photo, masks={"truth": {"mask_data": labels}})})
    """

    width: int
    height: int

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: str | None = None,
        grouping: int | None = None,
        classes: Classes | Sequence[Mapping[str, Any]] | None = None,
        boxes: Mapping[str, Any] | None = None,
        masks: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(data_or_path, Image):
            raw = {k: data_or_path._value[k] for k in _PIXEL_FIELDS if k in data_or_path._value}
            self.width, self.height = data_or_path.width, data_or_path.height
        elif isinstance(data_or_path, (str, os.PathLike)):
            raw = _from_file(data_or_path)
            self.width, self.height = raw["width"], raw["height"]
        else:
            pixels = _pixels(data_or_path, mode)
            h, w = pixels.shape[:2]
            c = 1 if pixels.ndim == 2 else pixels.shape[2]
            raw = {
                media.TYPE: media.IMAGE,
                "pixels": _buffer(pixels),
                "shape": [h, w, c],
                "mode": _MODES[c],
            }
            self.width, self.height = w, h
        self._value: dict[str, Any] = raw
        self._add_meta(caption, grouping, classes, boxes, masks)

    def _add_meta(self, caption: Any, grouping: Any, classes: Any, boxes: Any, masks: Any) -> None:
        raw = self._value
        if caption is not None:
            if not isinstance(caption, str) or text_problem(caption):
                why = text_problem(caption) if isinstance(caption, str) else "is not a str"
                raise TypeError(f"Image(): caption {why} ({type(caption).__name__}); pass a str")
            raw["caption"] = caption
        if grouping is not None:
            if isinstance(grouping, bool) or not isinstance(grouping, int):
                raise TypeError(f"Image(): grouping is {grouping!r}; pass an int")
            raw["grouping"] = grouping
        labels: dict[int, str] = {}
        size = (self.height, self.width)
        if boxes:
            raw["boxes"], found = check_boxes(boxes, size)
            labels.update(found)
        if masks:
            raw["masks"], found = check_masks(masks, size)
            labels.update(found)
        if classes is not None:
            labels.update({c["id"]: c["name"] for c in check_classes("Image()", classes)})
        if labels:
            raw["classes"] = [{"id": k, "name": v} for k, v in sorted(labels.items())]

    @staticmethod
    def to_uint8(data: Any) -> Any:
        """A numpy array as uint8 by wandb's rules (see the module docstring)."""
        return _to_uint8(data)

    def _raw(self, key: str) -> dict[str, Any]:
        return self._value

    def __repr__(self) -> str:
        kind = self._value.get("mode") or self._value.get("format")
        return f"<trackd.Image {self.width}x{self.height} {kind}>"


_PIXEL_FIELDS = (media.TYPE, "pixels", "shape", "mode", "file", "format", "width", "height")


def _buffer(pixels: Any) -> Any:
    """The pixels for the encoder: a view of a contiguous array (copied once, when packed)."""
    if pixels.flags.c_contiguous:
        return pixels.data.cast("B")
    return pixels.tobytes()


def _from_file(path: Any) -> dict[str, Any]:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Image(): no file at {name!r}; pass the path of an image file, or the pixels"
        ) from None
    try:
        with PILImage.open(io.BytesIO(data)) as img:  # reads the header only
            fmt, (width, height) = img.format, img.size
    except UnidentifiedImageError:
        raise ValueError(
            f"Image(): {name!r} is not an image file PIL can read (PNG, JPEG, GIF ...); pass "
            "the path of an image file, or the pixels"
        ) from None
    return {
        media.TYPE: media.IMAGE,
        "file": data,
        "format": (fmt or os.path.splitext(name)[1][1:]).lower(),
        "width": width,
        "height": height,
    }


def _pixels(data: Any, mode: str | None) -> Any:
    """HxW or HxWxC (C in 3, 4) uint8 numpy pixels of ``data``, in ``mode`` if given."""
    module = type(data).__module__
    if module.startswith("torch"):
        pixels = tensor_pixels(data)
    elif module.startswith("PIL.") and hasattr(data, "getbands"):
        pixels = _pil_pixels(data)
    else:
        pixels = _array_pixels(data)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if mode is not None:
        pixels = _convert(pixels, mode)
    return pixels


def _array_pixels(data: Any) -> Any:
    import numpy as np

    try:
        arr = np.asarray(data)
    except Exception as exc:  # a foreign object numpy cannot read
        raise TypeError(f"Image(): cannot read a {type(data).__name__} as pixels ({exc})") from None
    if arr.dtype.kind not in "biuf":  # bool, int, unsigned, float
        raise TypeError(
            f"Image(): data is a {type(data).__name__} of dtype {arr.dtype}; pass a numeric "
            "numpy array, a PIL image, a torch tensor, or the path of an image file"
        )
    shape = tuple(arr.shape)
    if arr.ndim > 2:
        arr = arr.squeeze()  # as wandb: HxWx1 -> HxW, 1xHxWx3 -> HxWx3
    if arr.size == 0 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        hint = ""
        if len(shape) == 3 and shape[0] in (1, 3, 4):
            hint = " (channels first? pass arr.transpose(1, 2, 0))"
        raise ValueError(
            f"Image(): a numpy array of shape {shape} is not an image; pass HxW, HxWx1, "
            f"HxWx3 or HxWx4 (channels last){hint}"
        )
    return _to_uint8(arr)


def _to_uint8(arr: Any) -> Any:
    import numpy as np

    if arr.dtype == np.uint8:
        # a 0/1 mask is scaled to 0/255; most pictures show a byte over 1 in their first rows,
        # so the full scan (a third of Image()'s cost) runs only when those rows are all 0/1
        if arr[:4].max() > 1 or arr.max() > 1:
            return arr
        return arr * np.uint8(255)
    data = arr.astype(np.int32) if arr.dtype == np.bool_ else arr
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        # wandb would cast NaN to an arbitrary byte; NaN is 0 here and inf the finite extreme
        finite = data[np.isfinite(data)]
        top, bottom = (finite.max(), finite.min()) if finite.size else (0, 0)
        data = np.nan_to_num(data, nan=0.0, posinf=top, neginf=bottom)
    dmin = np.min(data)
    if dmin < 0:
        span = np.ptp(data)
        data = (data - dmin) / span if span else np.zeros(data.shape)
    if np.max(data) <= 1.0:
        data = (data * 255).astype(np.int32)
    return data.clip(0, 255).astype(np.uint8)


def _pil_pixels(img: Any) -> Any:
    import numpy as np

    if img.mode not in _CHANNELS:
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "L" if img.mode in ("1", "I", "F") else "RGB")
    c = _CHANNELS[img.mode]
    flat = np.frombuffer(img.tobytes(), dtype=np.uint8)
    h, w = img.height, img.width
    return flat.reshape((h, w) if c == 1 else (h, w, c))


def _convert(pixels: Any, mode: str) -> Any:
    from PIL import Image as PILImage

    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    if mode == _MODES[c]:
        return pixels
    try:
        img = PILImage.fromarray(pixels).convert(mode)
    except ValueError as exc:
        raise ValueError(
            f"Image(): cannot convert {_MODES[c]} pixels to mode {mode!r} ({exc}); pass a PIL "
            "mode such as 'L', 'RGB' or 'RGBA'"
        ) from None
    return _pil_pixels(img)
