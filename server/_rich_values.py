"""Rich history values (images, histograms, tables; see :mod:`trackd._wire.media`) by key
and step, in ``run_media``, and how the read API shows them.

Ingest keeps every History value that is a typed map (``"_type"``), or a list holding one,
as JSON in ``run_media`` beside the run's history, so ``GET .../media`` finds them by key and
step without scanning scalars. Answers give each image file (and each mask) a ``url`` that
downloads it through the run (``.../blobs/<sha256>``), so a reader may fetch only what the
run holds.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from trackd._wire import media
from trackd._wire import records as p

from . import _schema as s
from ._db import Database

_TYPES = frozenset({media.IMAGE_FILE, media.IMAGES, media.TABLE, media.HISTOGRAM})
MAX_MEDIA_VALUES = 100_000  # one answer; more is asked for by step range


def is_rich(value: Any) -> bool:
    """A typed map, or a list holding one."""
    if type(value) is dict:
        return value.get(media.TYPE) in _TYPES
    if type(value) is list:
        return any(type(item) is dict and item.get(media.TYPE) in _TYPES for item in value)
    return False


def store(
    db: Database, conn: Connection, run_pk: int, records: list[Any], encoded: dict[int, Any]
) -> None:
    """Write the rich values of the History records among ``records`` (already checked;
    ``encoded`` holds their JSON by seq); a key written again at a step keeps the last."""
    rows = []
    for record in records:
        if record.kind != p.HISTORY:
            continue
        composite = encoded.get(record.seq, {})
        for key, value in record.data.items():
            if is_rich(value):
                doc = composite[key][3] if key in composite else json.dumps(value)
                rows.append({"run_pk": run_pk, "key": key, "step": record.step, "value": doc})
    if rows:
        insert = (sqlite if db.is_sqlite else postgresql).insert(s.run_media)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["run_pk", "key", "step"], set_={"value": insert.excluded.value}
            ),
            rows,
        )


def read(
    conn: Connection,
    run_pk: int,
    keys: list[str] | None,
    min_step: int | None,
    max_step: int | None,
    blob_url: str,
) -> dict[str, list[dict[str, Any]]]:
    """``{key: [{"step", "value"}, ...]}`` ordered by step; image files get a ``url``
    (``blob_url`` + ``/<sha256>``)."""
    m = s.run_media.c
    stmt = select(m.key, m.step, m.value).where(m.run_pk == run_pk)
    if keys is not None:
        stmt = stmt.where(m.key.in_(keys))
    if min_step is not None:
        stmt = stmt.where(m.step >= min_step)
    if max_step is not None:
        stmt = stmt.where(m.step <= max_step)
    out: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(stmt.order_by(m.key, m.step).limit(MAX_MEDIA_VALUES))
    for key, step, doc in rows:
        value = with_urls(json.loads(doc), blob_url)
        out.setdefault(key, []).append({"step": step, "value": value})
    return out


def with_urls(value: Any, blob_url: str) -> Any:
    """``value`` with a ``url`` in each image file and mask (tables and lists walked)."""
    if type(value) is list:
        return [with_urls(item, blob_url) for item in value]
    if type(value) is not dict:
        return value
    kind = value.get(media.TYPE)
    if kind == media.TABLE:
        rows = value.get("data")
        if type(rows) is list:
            value["data"] = [with_urls(row, blob_url) for row in rows]
    elif kind == media.IMAGES:
        items = value.get("items")
        if type(items) is list:
            value["items"] = [with_urls(item, blob_url) for item in items]
    elif kind == media.IMAGE_FILE:
        value["url"] = f"{blob_url}/{value.get('sha256')}"
        masks = value.get("masks")
        if type(masks) is dict:
            for mask in masks.values():
                if type(mask) is dict:
                    mask["url"] = f"{blob_url}/{mask.get('sha256')}"
    return value
