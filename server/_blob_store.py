"""Content-addressed storage of uploaded bytes (media files, saved files): one interface.

A blob is named by the SHA-256 of its bytes (64 lowercase hex digits) and shared by every run
that holds it; which runs may read it is the database's business (``run_blobs``), never the
store's. :class:`BlobStore` is all the server asks of a store, so an object store can stand
beside :class:`LocalBlobStore` later:

- ``exists(sha256)``;
- ``put(sha256, chunks)`` stores an async stream of chunks if its hash is ``sha256``
  (:class:`~.errors.BadRequest` otherwise, and nothing is kept), and returns its size; a
  blob already stored is not written again;
- ``size(sha256)`` and ``read(sha256)`` (an iterator of chunks) for downloads.

The local store keeps ``<root>/<first 2 hex>/<sha256>``, written to a temporary file in
``<root>/tmp`` (in the thread pool, 1 MiB at a time) and renamed into place, so a reader
never sees half a blob and a crash leaves only a temporary file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from starlette.concurrency import run_in_threadpool

from .errors import BadRequest, NotFound, PayloadTooLarge

MAX_BLOB_BYTES = 1 << 30
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits, else :class:`BadRequest`."""
    if not _SHA256.fullmatch(sha256):
        raise BadRequest(
            f"{sha256[:80]!r} is not a SHA-256; name a blob by the 64 lowercase hex digits of "
            "the SHA-256 of its bytes"
        )
    return sha256


class BlobStore(Protocol):
    def exists(self, sha256: str) -> bool: ...

    async def put(self, sha256: str, chunks: AsyncIterator[bytes]) -> int: ...

    def size(self, sha256: str) -> int: ...

    def read(self, sha256: str) -> Iterator[bytes]: ...


class LocalBlobStore:
    """Blobs as files under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / check_sha256(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored on this server") from None

    def read(self, sha256: str) -> Iterator[bytes]:
        try:
            f = open(self.path(sha256), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored on this server") from None
        return _chunks(f)

    def _open_temp(self) -> tuple[str, IO[bytes]]:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="put-", dir=tmp_dir)
        return tmp, os.fdopen(fd, "wb")

    def _commit(self, out: IO[bytes], tmp: str, sha256: str) -> None:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)  # the same bytes may land twice at once: either rename wins

    async def put(self, sha256: str, chunks: AsyncIterator[bytes]) -> int:
        """Store the stream as blob ``sha256`` if its bytes hash to it; returns its size."""
        check_sha256(sha256)
        if await run_in_threadpool(self.exists, sha256):  # verify the bytes, write nothing
            return await _verify(sha256, chunks, None)
        tmp, out = await run_in_threadpool(self._open_temp)
        try:
            size = await _verify(sha256, chunks, out)
            await run_in_threadpool(self._commit, out, tmp, sha256)
        except BaseException:
            out.close()
            Path(tmp).unlink(missing_ok=True)
            raise
        return size


async def _verify(sha256: str, chunks: AsyncIterator[bytes], out: IO[bytes] | None) -> int:
    """Hash (and write to ``out``) the stream; :class:`BadRequest` unless it is ``sha256``."""
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BLOB_BYTES:
            raise PayloadTooLarge(
                f"blob {sha256} is over the {MAX_BLOB_BYTES >> 20} MiB upload limit"
            )
        pending += chunk
        if len(pending) >= _CHUNK:
            await run_in_threadpool(_write, out, digest, bytes(pending))
            pending.clear()
    await run_in_threadpool(_write, out, digest, bytes(pending))
    if digest.hexdigest() != sha256:
        raise BadRequest(
            f"the uploaded bytes ({size} bytes) hash to {digest.hexdigest()}, not to "
            f"{sha256}; upload a blob under the SHA-256 of its bytes"
        )
    return size


def _write(out: IO[bytes] | None, digest: Any, data: bytes) -> None:
    digest.update(data)
    if out is not None:
        out.write(data)


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    with f:
        while chunk := f.read(_CHUNK):
            yield chunk
