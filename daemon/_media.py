"""Raw media to files: PNG encoding, content addressing, and the rows that name the files.

A ``HistoryMedia`` row holds raw values (:mod:`trackd._wire.media`). :func:`convert_row`
encodes each raw image (and each mask) to PNG with PIL, names it by the SHA-256 of its
bytes, writes it to ``<run dir>/media/<sha256>.<format>`` (a temporary file renamed into
place, so a file with that name is always whole) and puts a file reference where the raw
value was. Image files logged as files (``"file"``) are kept as they are. Encoding is
deterministic (same pixels, same PNG bytes), so a daemon that redoes a row after a crash
names the same files and uploads nothing twice.

Nothing here touches the network: the caller uploads the files :func:`convert_row` lists.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from trackd._wire import media

MEDIA_DIR = "media"
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_OPTIONAL = ("caption", "grouping", "boxes", "classes")
PNG_LEVEL = 3  # zlib level: most of the size gain of 6 for a fraction of the time


class MediaError(ValueError):
    """A raw value that cannot be turned into a file (its reason names the key)."""


@dataclass(slots=True)
class Converted:
    """A row with file references, and the files it names (sha256 -> local path)."""

    data: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def encode_png(pixels: bytes, width: int, height: int, mode: str) -> bytes:
    """The PNG of ``pixels`` (uint8, row-major), always the same bytes for the same input."""
    image = Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


def store_file(media_dir: Path, data: bytes, fmt: str) -> tuple[str, Path]:
    """Write ``data`` as ``<sha256>.<fmt>`` under ``media_dir`` (once); its hash and path."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = media_dir / f"{sha256}.{fmt}"
    if not path.exists():
        media_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=media_dir)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    return sha256, path


def convert_row(data: dict[str, Any], run_dir: Path) -> Converted:
    """``data`` with every raw image (in values, lists and table cells) replaced by a file
    reference; :class:`MediaError` for a raw value that cannot be encoded."""
    out = Converted({})
    media_dir = run_dir / MEDIA_DIR
    for key, value in data.items():
        try:
            out.data[key] = _convert(value, media_dir, out.files)
        except (MediaError, ValueError, TypeError, KeyError) as exc:
            raise MediaError(f"value for key {key!r}: {exc}") from exc
    return out


def _convert(value: Any, media_dir: Path, files: dict[str, Path]) -> Any:
    if type(value) is list:
        return [_convert(item, media_dir, files) for item in value]
    if type(value) is not dict:
        return value
    kind = value.get(media.TYPE)
    if kind == media.IMAGE:
        return _image(value, media_dir, files)
    if kind == media.IMAGES and media.is_raw(value):
        return dict(value, items=[_convert(item, media_dir, files) for item in value["items"]])
    if kind == media.TABLE and media.is_raw(value):
        rows = [[_convert(cell, media_dir, files) for cell in row] for row in value["data"]]
        return dict(value, data=rows)
    return value


def _shape(value: dict[str, Any], what: str, channels: bool) -> tuple[int, int, int]:
    shape = value.get("shape")
    if type(shape) is not list or len(shape) != (3 if channels else 2):
        raise MediaError(f"{what} shape {shape!r} is not [h, w{', c' if channels else ''}]")
    height, width, depth = shape[0], shape[1], shape[2] if channels else 1
    pixels = value.get("pixels")
    if type(pixels) is not bytes or len(pixels) != height * width * depth:
        size = len(pixels) if isinstance(pixels, bytes) else type(pixels).__name__
        raise MediaError(f"{what} pixels ({size}) do not fill shape {shape} as uint8")
    return height, width, depth


def _image(value: dict[str, Any], media_dir: Path, files: dict[str, Path]) -> dict[str, Any]:
    if "file" in value:
        data, fmt = value["file"], str(value.get("format") or "bin").lower()
        if type(data) is not bytes or not fmt.isalnum():
            raise MediaError("an image file is bytes with a short alphanumeric format")
        width, height = value.get("width"), value.get("height")
    else:
        height, width, depth = _shape(value, "image", channels=True)
        if depth not in _MODES:
            raise MediaError(f"image has {depth} channels; images have 1, 3 or 4")
        data, fmt = encode_png(value["pixels"], width, height, _MODES[depth]), "png"
    sha256, path = store_file(media_dir, data, fmt)
    files[sha256] = path
    ref: dict[str, Any] = {
        media.TYPE: media.IMAGE_FILE,
        "sha256": sha256,
        "size": len(data),
        "format": fmt,
        "width": width,
        "height": height,
    }
    ref.update((k, value[k]) for k in _OPTIONAL if value.get(k) is not None)
    if value.get("masks"):
        ref["masks"] = {
            group: _mask(mask, (height, width), media_dir, files)
            for group, mask in value["masks"].items()
        }
    return ref


def _mask(
    mask: dict[str, Any], size: tuple[Any, Any], media_dir: Path, files: dict[str, Path]
) -> dict[str, Any]:
    height, width, _ = _shape(mask, "mask", channels=False)
    if (height, width) != tuple(size):
        raise MediaError(f"mask shape [{height}, {width}] is not the image's {list(size)}")
    data = encode_png(mask["pixels"], width, height, "L")
    sha256, path = store_file(media_dir, data, "png")
    files[sha256] = path
    ref = {"sha256": sha256, "size": len(data), "format": "png"}
    if mask.get("class_labels") is not None:
        ref["class_labels"] = mask["class_labels"]
    return ref


def snapshot_file(path: Path, run_dir: Path) -> tuple[str, int, Path]:
    """Copy a saved file into ``<run dir>/media`` while hashing it (1 MiB at a time: any size,
    bounded memory), so what is uploaded is exactly what was hashed even if the file changes
    meanwhile; returns its SHA-256, size and the copy's path."""
    media_dir = run_dir / MEDIA_DIR
    media_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=media_dir)
    try:
        with open(path, "rb") as f, os.fdopen(fd, "wb") as out:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        final = media_dir / f"{digest.hexdigest()}.file"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size, final
