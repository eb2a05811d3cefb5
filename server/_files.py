"""Files uploaded to a run, stored under ``<data dir>/files/<run>/``.

A file's name is a relative POSIX path. Absolute paths, ``..`` and ``.`` parts, empty parts,
backslashes, NUL bytes and parts over 255 bytes are refused, so a name can never reach
outside the run's directory. Uploads are written to a temporary file (off the event loop, in
the thread pool) and renamed into place, so a reader never sees half a file. A file is listed
only if it can be read: a symlink that leads outside the run's directory is neither.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from starlette.concurrency import run_in_threadpool

from .errors import BadRequest, Conflict, NotFound, PayloadTooLarge

MAX_FILE_BYTES = 1 << 30
MAX_PART_BYTES = 255  # the longest file name Linux (and most file systems) allow
_TMP_PREFIX = ".trackd-upload-"
_WRITE_BYTES = 1 << 20  # gather this much before each write in the thread pool


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
    for part in parts:
        if len(part.encode()) > MAX_PART_BYTES:
            raise BadRequest(
                f"file path {name!r} has a part longer than {MAX_PART_BYTES} bytes "
                f"({part[:20]!r}...); shorten it"
            )
    path = root.joinpath(*parts)
    if not _inside(root, path):
        raise BadRequest(f"file path {name!r} points outside the run's files")
    return path


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _check_clash(root: Path, path: Path, name: str) -> None:
    """:class:`Conflict` if ``path`` is a folder, or if a folder on its way is a file."""
    if path.is_dir():
        raise Conflict(
            f"file path {name!r} is a folder (it holds other files); upload to another path"
        )
    for parent in reversed(path.relative_to(root).parents):
        if (root / parent).exists() and not (root / parent).is_dir():
            raise Conflict(
                f"file path {name!r} cannot be stored: {parent.as_posix()!r} is a file, and a "
                "file cannot hold other files; upload to another path"
            )


def _os_error(exc: OSError, name: str) -> Exception:
    """A client's error for an OS error about the path ``name`` (a clash found late)."""
    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        return Conflict(f"file path {name!r} clashes with an existing file or folder ({exc})")
    if exc.errno == errno.ENAMETOOLONG:
        return BadRequest(f"file path {name!r} is too long for the server's file system")
    return exc


def describe(root: Path, path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {
        "name": path.relative_to(root).as_posix(),
        "size": stat.st_size,
        "updated": stat.st_mtime,
    }


def _open_temp(root: Path, path: Path, name: str) -> tuple[str, IO[bytes]]:
    _check_clash(root, path, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    except OSError as exc:
        raise _os_error(exc, name) from exc
    return tmp, os.fdopen(fd, "wb")


def _commit(out: IO[bytes], rest: bytes, tmp: str, path: Path, name: str) -> None:
    with out:
        out.write(rest)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise _os_error(exc, name) from exc


def _discard(out: IO[bytes], tmp: str) -> None:
    out.close()
    Path(tmp).unlink(missing_ok=True)


async def save(root: Path, name: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """Write the uploaded ``chunks`` to ``name`` atomically; returns the file's description.

    The body is read on the event loop; every file system call runs in the thread pool.
    """
    path = safe_path(root, name)
    tmp, out = await run_in_threadpool(_open_temp, root, path, name)
    try:
        size, pending = 0, bytearray()
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise PayloadTooLarge(
                    f"file {name!r} is over the {MAX_FILE_BYTES >> 20} MiB upload limit"
                )
            pending += chunk
            if len(pending) >= _WRITE_BYTES:
                await run_in_threadpool(out.write, bytes(pending))
                pending.clear()
        await run_in_threadpool(_commit, out, bytes(pending), tmp, path, name)
    except BaseException:
        await run_in_threadpool(_discard, out, tmp)
        raise
    return await run_in_threadpool(describe, root, path)


def listing(root: Path) -> list[dict[str, Any]]:
    """The run's files that can be read (see :func:`find`), sorted by name."""
    if not root.is_dir():
        return []
    found = []
    for folder, _dirs, names in os.walk(root):  # does not descend into symlinked folders
        for file_name in names:
            path = Path(folder, file_name)
            readable = path.is_file() and _inside(root, path)
            if readable and not file_name.startswith(_TMP_PREFIX):
                found.append(path)
    return sorted((describe(root, p) for p in found), key=lambda f: f["name"])


def find(root: Path, name: str) -> Path:
    path = safe_path(root, name)
    if not path.is_file():
        raise NotFound(f"file {name!r} not found in this run; list files with GET .../files")
    return path
