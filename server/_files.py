"""Files uploaded to a run, stored under ``<data dir>/files/<run>/``.

A file's name is a relative POSIX path. Absolute paths, ``..`` and ``.`` parts, empty parts,
backslashes and NUL bytes are refused, so a name can never reach outside the run's
directory. Uploads are written to a temporary file and renamed into place, so a reader never
sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .errors import BadRequest, NotFound, PayloadTooLarge

MAX_FILE_BYTES = 1 << 30
_TMP_PREFIX = ".trackd-upload-"


def run_dir(data_dir: Path, run_pk: int) -> Path:
    return data_dir / "files" / str(run_pk)


def safe_path(root: Path, name: str) -> Path:
    """``root / name`` if ``name`` stays inside ``root``, else :class:`BadRequest`."""
    parts = name.split("/")
    bad = (
        not name
        or len(name) > 1024
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
        or parts[-1].startswith(_TMP_PREFIX)
    )
    if bad:
        raise BadRequest(
            f"file path {name!r} is not allowed; use a relative path such as "
            "'checkpoints/model.pt' without '..', '.', empty parts or backslashes"
        )
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise BadRequest(f"file path {name!r} points outside the run's files")
    return path


def describe(root: Path, path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {
        "name": path.relative_to(root).as_posix(),
        "size": stat.st_size,
        "updated": stat.st_mtime,
    }


async def save(root: Path, name: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """Write the uploaded ``chunks`` to ``name`` atomically; returns the file's description."""
    path = safe_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise PayloadTooLarge(
                        f"file {name!r} is over the {MAX_FILE_BYTES >> 20} MiB upload limit"
                    )
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return describe(root, path)


def listing(root: Path) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return [describe(root, p) for p in files if not p.name.startswith(_TMP_PREFIX)]


def find(root: Path, name: str) -> Path:
    path = safe_path(root, name)
    if not path.is_file():
        raise NotFound(f"file {name!r} not found in this run; list files with GET .../files")
    return path
