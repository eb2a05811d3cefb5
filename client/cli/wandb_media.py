"""wandb's media values (what a ``.wandb`` file's history and summary hold for a
``wandb.Image``, ``wandb.Histogram`` or ``wandb.Table``) as trackd values.

wandb writes a media value as a small map with a ``_type`` (its fields as nested keys of the
row), and the media itself as a file of the run's ``files/`` folder (``media/images/...png``,
``media/table/...table.json``). Each becomes the trackd value the client would have logged,
so the import takes the client's media path (an image's file bytes are kept as they are)::

    image-file        -> trackd.Image(<files>/<path>, caption=...)
    images/separated  -> [trackd.Image, ...] (one per file name)
    histogram         -> trackd.Histogram(np_histogram=(values, bins)); packedBins unpacked
    table-file        -> trackd.Table(columns, data) read from the .table.json (image cells
                         as trackd.Image)

Anything else raises :class:`NotImported` with the reason it is left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._histogram import Histogram
from .._image import Image
from .._table import Table

TYPE = "_type"


class NotImported(ValueError):
    """A wandb media value trackd does not bring over; ``str()`` is the reason (the same
    for every value of its kind, so that the import's summary counts them)."""


def is_media(value: Any) -> bool:
    """True if ``value`` is one of wandb's typed media maps."""
    return type(value) is dict and TYPE in value


def trackd_value(value: dict[str, Any], files_dir: Path) -> Any:
    """The trackd value of a wandb media map whose files are under ``files_dir``."""
    kind = value[TYPE]
    if kind == "image-file":
        return _image(value, files_dir)
    if kind == "images/separated":
        captions = value.get("captions") or []
        names = value.get("filenames") or []
        return [
            _image({"path": name, "caption": captions[i] if i < len(captions) else None}, files_dir)
            for i, name in enumerate(names)
        ]
    if kind == "histogram":
        return _histogram(value)
    if kind == "table-file":
        return _table(value, files_dir)
    raise NotImported(f"media values of wandb type {kind!r} (trackd has no such type)")


def _image(value: dict[str, Any], files_dir: Path) -> Image:
    path = _file(value, files_dir)
    caption = value.get("caption")
    try:
        return Image(path, caption=caption if isinstance(caption, str) else None)
    except (OSError, ValueError):
        raise NotImported("wandb images whose file is not an image PIL can read") from None


def _histogram(value: dict[str, Any]) -> Histogram:
    counts = value.get("values")
    bins = value.get("bins")
    packed = value.get("packedBins")
    if bins is None and isinstance(packed, dict):
        start, size, count = packed.get("min"), packed.get("size"), packed.get("count")
        if not (
            isinstance(start, int | float)
            and isinstance(size, int | float)
            and isinstance(count, int)
        ):
            raise NotImported("wandb histograms with malformed packedBins")
        bins = [start + i * size for i in range(count + 1)]
    if not isinstance(counts, list) or not isinstance(bins, list):
        raise NotImported("wandb histograms without values and bins")
    try:
        return Histogram(np_histogram=(counts, bins))
    except (TypeError, ValueError) as exc:
        raise NotImported(f"wandb histograms trackd cannot store ({exc})") from None


def _table(value: dict[str, Any], files_dir: Path) -> Table:
    path = _file(value, files_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        columns, rows = doc["columns"], doc["data"]
    except (OSError, ValueError, KeyError, TypeError):
        raise NotImported("wandb tables whose .table.json is not readable") from None
    cells = [[_cell(cell, files_dir) for cell in row] for row in rows]
    try:
        return Table(columns=[str(c) for c in columns], data=cells)
    except (TypeError, ValueError) as exc:
        raise NotImported(f"wandb tables trackd cannot store ({exc})") from None


def _cell(cell: Any, files_dir: Path) -> Any:
    if is_media(cell):
        if cell[TYPE] != "image-file":
            raise NotImported(f"wandb tables with cells of wandb type {cell[TYPE]!r}")
        return _image(cell, files_dir)
    return cell


def _file(value: dict[str, Any], files_dir: Path) -> Path:
    """The file a media map names, which must lie under the run's ``files/`` folder."""
    name = value.get("path")
    if not isinstance(name, str):
        raise NotImported("wandb media values that name no file")
    path = (files_dir / name).resolve()
    if not path.is_relative_to(files_dir.resolve()) or not path.is_file():
        raise NotImported("wandb media values whose file is not in the run's files/ folder")
    return path
