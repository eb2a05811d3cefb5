"""Files uploaded to a run (``PUT .../files/{name}``): names in ``run_files``, bytes in the store.

A file's bytes are a content-addressed object in the blob store (:mod:`._blob_store`); its
name is a row of ``run_files`` pointing at that object, the same row a file saved with
``trackd.save`` has (see :mod:`._run_blobs`), so both are listed and downloaded alike. The
body is streamed into the store (hashed as it arrives, never held whole), then the run is
linked to the object and the name pointed at it in one transaction: a reader never sees half
a file.

A name is a relative POSIX path. Absolute paths, ``..`` and ``.`` parts, empty parts,
backslashes, NUL bytes and parts over 255 bytes are refused. The names of a run form a tree,
as on a disk: a name cannot be both a file and a folder (``a`` and ``a/b``), which is a 409.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Connection, or_, select
from starlette.concurrency import run_in_threadpool

from . import _run_blobs
from . import _schema as s
from ._blob_store import BlobStore
from ._db import Database
from .errors import BadRequest, Conflict, NotFound

MAX_FILE_BYTES = 1 << 30
MAX_PART_BYTES = 255  # the longest file name Linux (and most file systems) allow
MAX_NAME_CHARS = 1024


def check_name(name: str) -> str:
    """``name`` if it is an allowed relative path, else :class:`BadRequest`."""
    parts = name.split("/")
    bad = (
        not name
        or len(name) > MAX_NAME_CHARS
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
    )
    if bad:
        raise BadRequest(
            f"file path {name!r} is not allowed; use a relative path such as "
            "'checkpoints/model.pt' without '..', '.', empty parts or backslashes"
        )
    for part in parts:
        if len(part.encode()) > MAX_PART_BYTES:
            raise BadRequest(
                f"file path {name!r} has a part longer than {MAX_PART_BYTES} bytes "
                f"({part[:20]!r}...); shorten it"
            )
    return name


def check_clash(conn: Connection, run_pk: int, name: str) -> None:
    """:class:`Conflict` if ``name`` is a folder of the run's files, or a folder on its way
    is a file."""
    f = s.run_files.c
    parents = ["/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)]
    clash = conn.execute(
        select(f.name)
        .where(f.run_pk == run_pk)
        .where(or_(f.name.startswith(name + "/", autoescape=True), f.name.in_(parents)))
        .limit(1)
    ).scalar()
    if clash is None:
        return
    if clash.startswith(name + "/"):
        raise Conflict(
            f"file path {name!r} is a folder (it holds other files); upload to another path"
        )
    raise Conflict(
        f"file path {name!r} cannot be stored: {clash!r} is a file, and a file cannot hold "
        "other files; upload to another path"
    )


async def save(
    db: Database, store: BlobStore, run_pk: int, name: str, chunks: AsyncIterator[bytes]
) -> dict[str, Any]:
    """Stream ``chunks`` into the store as run file ``name``; returns the file's description
    (database calls run in the thread pool)."""
    check_name(name)
    await run_in_threadpool(_check_clash_now, db, run_pk, name)
    stored = await store.put(chunks)
    return await run_in_threadpool(_point, db, run_pk, name, stored.sha256, stored.size)


def _check_clash_now(db: Database, run_pk: int, name: str) -> None:
    with db.read() as conn:
        check_clash(conn, run_pk, name)


def _point(db: Database, run_pk: int, name: str, sha256: str, size: int) -> dict[str, Any]:
    with db.write() as conn:
        check_clash(conn, run_pk, name)  # again: another upload may have made a clash since
        _run_blobs.link(db, conn, run_pk, sha256, size)
        _run_blobs.point(db, conn, run_pk, name, sha256, size)
        f = s.run_files.c
        updated = conn.execute(
            select(f.updated_at).where(f.run_pk == run_pk, f.name == name)
        ).scalar_one()
    return {"name": name, "size": size, "updated": updated, "sha256": sha256}


def find(conn: Connection, run_pk: int, name: str) -> tuple[str, int]:
    """The object (SHA-256, size) holding run file ``name``; :class:`NotFound` if the run has
    no such file, :class:`~.errors.Conflict` if its object never reached this run."""
    sha256 = _run_blobs.saved_file(conn, run_pk, check_name(name))
    size = None if sha256 is None else _run_blobs.linked_size(conn, run_pk, sha256)
    if sha256 is None or size is None:
        raise NotFound(f"file {name!r} not found in this run; list files with GET .../files")
    return sha256, size
