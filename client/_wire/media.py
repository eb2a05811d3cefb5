"""Rich values in history rows: images, masks, histograms, tables (format version 1).

``log()`` values that are not scalars travel as small typed maps, each with a ``"_type"``
field. A history row never holds a plain map otherwise (``log()`` flattens nested dicts to
dotted keys), so a map value in a row is always one of these.

Two stages. The training process sends **raw** values: the pixels of an image as one
msgpack ``bin`` (no encoding on the training thread). A row that holds any raw value is sent
as a :class:`trackd._wire.records.HistoryMedia` record (kind 8) instead of ``History``, so the
daemon's uploader knows which rows need work without decoding every row. Off the training
thread the daemon encodes each raw image to PNG, names the file by the SHA-256 of its bytes,
uploads it once per run (``PUT .../blobs/<sha256>``), and sends the row to the server as a
plain ``History`` record (same seq) whose raw values are replaced by **file** references. The
server never sees raw pixels; encoding is deterministic, so a retry after a crash names the
same files.

Raw values (client -> daemon), map keys as shown; optional ones may be absent or None::

    {"_type": "image", "pixels": bin, "shape": [h, w, c], "mode": "L"|"RGB"|"RGBA",
     "caption": str, "grouping": int, "boxes": {group: BOXES}, "masks": {group: MASK},
     "classes": [{"id": int, "name": str}, ...]}
        pixels: h*w*c uint8, row-major, c in 1, 3, 4 (mode "L", "RGB", "RGBA").
    {"_type": "image", "file": bin, "format": "png"|"jpeg"|"gif"|..., "width": w,
     "height": h, ...same optional fields}
        an image file's bytes as read from disk (kept as they are, not re-encoded).
    MASK = {"pixels": bin, "shape": [h, w], "class_labels": {"<id>": name}}
        one uint8 class id per pixel; (h, w) equals the image's.
    BOXES = {"box_data": [{"position": {"minX", "maxX", "minY", "maxY"} or
                           {"middle": [x, y], "width", "height"},
                           "domain": "pixel" or absent (relative 0-1),
                           "class_id": int, "box_caption": str, "scores": {name: float}}],
             "class_labels": {"<id>": name}}
        boxes and class labels are stored as they are (class-label keys are str).
    {"_type": "images", "items": [raw image, ...]}
        a list of images logged under one key (``log({"examples": [Image, ...]})``).
    {"_type": "table", "columns": [str], "data": [[cell, ...], ...]}
        cells: None, bool, int, float, str, or a raw image.

Encoding (the daemon): PNG by PIL at zlib level 3, no metadata, so the same pixels always
give the same file; a mask is a mode "L" PNG. A file is named ``<sha256>.<format>`` in
``<run dir>/media/`` and uploaded as blob ``<sha256>`` of the run.

File references (daemon -> server, and what the read API returns, with a ``url`` added to
each image and each mask: ``/api/v1/runs/<entity>/<project>/<run>/blobs/<sha256>``)::

    {"_type": "image-file", "sha256": hex, "size": n, "format": "png", "width": w,
     "height": h, ...the image's optional fields, masks as
     {group: {"sha256": hex, "size": n, "format": "png", "class_labels": {...}}}}
    {"_type": "images", "items": [image-file, ...]}
    {"_type": "table", "columns": [...], "data": [...cells, image cells as image-file...]}

Values that need no daemon work are sent as they are, in plain ``History`` rows::

    {"_type": "histogram", "bins": [edge, ...] (n+1 floats), "values": [count, ...] (n ints;
     floats only for a weighted or density ``np_histogram`` passed in by the user),
     "nan": int, "inf": int, "-inf": int}  (non-finite counts, present when not zero)
    a list of numbers (a small array or a list passed to log())

A saved file (``trackd.save``) is a :class:`trackd._wire.records.File` record: the client
names the file; the daemon hashes and uploads it and fills in ``sha256`` and ``size`` before
the record goes to the server.
"""

from __future__ import annotations

from typing import Any

FORMAT_VERSION = 1
TYPE = "_type"
IMAGE = "image"  # raw
IMAGE_FILE = "image-file"  # uploaded
IMAGES = "images"  # a list of images under one key: raw or uploaded items
TABLE = "table"
HISTOGRAM = "histogram"
MAX_BINS = 512
DEFAULT_BINS = 64
SAVE_POLICIES = ("live", "now", "end")


def is_raw(value: Any) -> bool:
    """True if ``value`` holds raw media the daemon must turn into files."""
    if type(value) is not dict:
        return False
    kind = value.get(TYPE)
    if kind == IMAGE:
        return True
    if kind == IMAGES:
        return any(is_raw(item) for item in value.get("items", ()))
    if kind == TABLE:
        return any(is_raw(cell) for row in value.get("data", ()) for cell in row)
    return False


def row_has_raw(row: dict[str, Any]) -> bool:
    """True if any value of a history row is raw media (send it as ``HistoryMedia``)."""
    return any(type(v) is dict and is_raw(v) for v in row.values())
