"""Run files an older server kept as plain files under ``<data dir>/files/<run>/``, moved
into the blob store at startup.

Before run files were content-addressed objects, ``PUT .../files/{name}`` wrote
``<data dir>/files/<run pk>/<name>``. At startup (under the migration lock, so once across
servers) each such file that could be read (a regular file, or a symlink that stays inside
its run's folder, as the old listing showed) becomes an object in the store and a row in
``run_files`` (a file saved with ``trackd.save`` under the same name wins, as it did in the
old listing); then the folder is renamed ``files.imported`` (kept for the operator to delete).
Stopped half-way, the next start does it again: objects and rows are idempotent.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sqlalchemy import select

from . import _run_blobs
from . import _schema as s
from ._blob_store import BlobStore
from ._db import Database

_TMP_PREFIX = ".trackd-upload-"  # the old server's temporary files: never finished uploads
_READ_BYTES = 1 << 20


def import_files(data_dir: Path, db: Database, store: BlobStore) -> int:
    """Move ``<data dir>/files`` into ``store`` and ``run_files``; returns how many files."""
    root = data_dir / "files"
    if not root.is_dir():
        return 0
    count = asyncio.run(_import(root, db, store))
    done = data_dir / "files.imported"
    if done.exists():
        done = data_dir / f"files.imported-{int(time.time())}"
    root.rename(done)
    return count


async def _import(root: Path, db: Database, store: BlobStore) -> int:
    count = 0
    for run_dir in sorted(root.iterdir()):
        if not (run_dir.name.isdigit() and run_dir.is_dir()) or not _run_exists(db, run_dir):
            continue
        run_pk = int(run_dir.name)
        for name, path in readable(run_dir):
            stored = await store.put(_chunks(path))
            with db.write() as conn:
                _run_blobs.link(db, conn, run_pk, stored.sha256, stored.size)
                row = {
                    "run_pk": run_pk,
                    "name": name,
                    "sha256": stored.sha256,
                    "size": stored.size,
                    "updated_at": path.stat().st_mtime,
                }
                db.insert_ignore(conn, s.run_files, row)
            count += 1
    return count


def _run_exists(db: Database, run_dir: Path) -> bool:
    with db.read() as conn:
        runs = s.runs.c
        return conn.execute(select(runs.id).where(runs.id == int(run_dir.name))).first() is not None


def readable(run_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(name, path)`` of each file the old server listed in ``run_dir``, sorted by name."""
    inside = run_dir.resolve()
    found = []
    for folder, _dirs, names in os.walk(run_dir):  # does not descend into symlinked folders
        for file_name in names:
            path = Path(folder, file_name)
            if file_name.startswith(_TMP_PREFIX) or not path.is_file():
                continue
            if path.resolve().is_relative_to(inside):
                found.append((path.relative_to(run_dir).as_posix(), path))
    return iter(sorted(found))


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_READ_BYTES):
            yield chunk
