"""Which runs hold which blobs (``run_blobs``), and the files saved with a run (``run_files``).

A blob is linked to a run when its bytes were uploaded through that run (the hash checked):
a key that may read the run may read the blob, and knowing a hash gives nothing more. A
saved file (``trackd.save``) is a name in the run pointing at the blob of its last version;
a File record, or the daemon's re-upload of a live file, moves the name to a new blob.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from trackd._wire import records as p

from . import _schema as s
from ._db import Database
from .errors import Conflict, NotFound


def link(db: Database, conn: Connection, run_pk: int, sha256: str, size: int) -> None:
    """Record that ``run_pk`` holds blob ``sha256`` (again is fine)."""
    db.insert_ignore(
        conn,
        s.run_blobs,
        {"run_pk": run_pk, "sha256": sha256, "size": size, "created_at": time.time()},
    )


def linked_size(conn: Connection, run_pk: int, sha256: str) -> int | None:
    """The blob's size if ``run_pk`` holds it, else ``None``."""
    b = s.run_blobs.c
    row = conn.execute(select(b.size).where(b.run_pk == run_pk, b.sha256 == sha256)).first()
    return None if row is None else int(row.size)


def point(db: Database, conn: Connection, run_pk: int, name: str, sha256: str, size: int) -> None:
    """Saved file ``name`` of the run now holds blob ``sha256`` (idempotent)."""
    insert = (sqlite if db.is_sqlite else postgresql).insert(s.run_files)
    row = {"run_pk": run_pk, "name": name, "sha256": sha256, "size": size}
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["run_pk", "name"],
            set_={
                "sha256": insert.excluded.sha256,
                "size": insert.excluded.size,
                "updated_at": insert.excluded.updated_at,
            },
        ),
        [dict(row, updated_at=time.time())],
    )


def store_saved_one(db: Database, conn: Connection, run_pk: int) -> Callable[[p.File], None]:
    """Ingest's handler of a (checked) File record: the name points at its blob."""

    def apply(record: p.File) -> None:
        assert record.sha256 is not None and record.size is not None
        point(db, conn, run_pk, record.name, record.sha256, record.size)

    return apply


def saved_files(conn: Connection, run_pk: int) -> list[dict[str, Any]]:
    """The run's saved files, as the files listing shows them."""
    f = s.run_files.c
    rows = conn.execute(
        select(f.name, f.sha256, f.size, f.updated_at).where(f.run_pk == run_pk).order_by(f.name)
    )
    return [
        {"name": name, "size": size, "updated": updated, "sha256": sha}
        for name, sha, size, updated in rows
    ]


def saved_file(conn: Connection, run_pk: int, name: str) -> str | None:
    """The blob holding saved file ``name``, or ``None`` if the run saved no such file;
    :class:`Conflict` if its blob has not been uploaded through this run."""
    f = s.run_files.c
    sha = conn.execute(select(f.sha256).where(f.run_pk == run_pk, f.name == name)).scalar()
    if sha is None:
        return None
    if linked_size(conn, run_pk, sha) is None:
        raise Conflict(
            f"saved file {name!r} names blob {sha}, which was never uploaded to this run; "
            "the daemon uploads it before the record: run `trackd sync` on the training machine"
        )
    return str(sha)


def require_linked(conn: Connection, run_pk: int, sha256: str) -> int:
    """The blob's size, or :class:`NotFound` if the run does not hold it."""
    size = linked_size(conn, run_pk, sha256)
    if size is None:
        raise NotFound(
            f"blob {sha256} is not part of this run; upload it with PUT .../blobs/{sha256}"
        )
    return size
