"""Content-addressed storage of every uploaded byte (media, saved and uploaded run files).

An object is named by the SHA-256 of its bytes (64 lowercase hex digits) and shared by every
run that holds it; which runs may read it is the database's business (``run_blobs``), and a
run file's name is a row in ``run_files`` pointing at an object (see :mod:`._files`), never
the store's. :class:`BlobStore` is all the server asks of a store:

- ``exists(sha256)``, ``size(sha256)`` and ``read(sha256)`` (an iterator of chunks, streamed
  to the client);
- ``put(chunks, sha256=None)`` stores an async stream of chunks, hashing it as it streams
  (never the whole object in memory), and returns its :class:`Stored` name and size. With
  ``sha256`` given the bytes must hash to it (:class:`~.errors.BadRequest` otherwise, and
  nothing is kept); an object already stored is not written again.

Two stores: :class:`LocalBlobStore` (a directory, which several servers may share) and
:class:`~._s3_store.S3BlobStore` (an S3-compatible object store); :func:`open_store` picks
one from the ``files`` setting.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from starlette.concurrency import run_in_threadpool

from ._settings import Settings
from .errors import BadRequest, NotFound, PayloadTooLarge, StartupError

MAX_BLOB_BYTES = 1 << 30
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class Stored(NamedTuple):
    sha256: str
    size: int


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits, else :class:`BadRequest`."""
    if not _SHA256.fullmatch(sha256):
        raise BadRequest(
            f"{sha256[:80]!r} is not a SHA-256; name a blob by the 64 lowercase hex digits of "
            "the SHA-256 of its bytes"
        )
    return sha256


class BlobStore(Protocol):
    where: str  # where the objects are, for people (a directory or s3://bucket/prefix)

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def read(self, sha256: str) -> Iterator[bytes]: ...

    async def put(self, chunks: AsyncIterator[bytes], sha256: str | None = None) -> Stored: ...


def open_store(settings: Settings) -> BlobStore:
    """The store the ``files`` setting names: ``s3://bucket/prefix``, a directory, or (unset)
    ``<data dir>/blobs``. An S3 store's bucket is checked here, so a wrong one stops startup."""
    where = settings.files
    if where is None:
        return LocalBlobStore(settings.data_dir / "blobs")
    if where.startswith("s3://"):
        try:
            from ._s3_store import S3BlobStore
        except ImportError as exc:
            raise StartupError(
                f"--files {where} needs boto3 ({exc}); install it with: pip install 'trackd[s3]'"
            ) from exc
        return S3BlobStore.open(where, settings.files_endpoint)
    if "://" in where:
        raise StartupError(
            f"--files {where!r}: the scheme is not known; give s3://bucket/prefix or a directory"
        )
    return LocalBlobStore(Path(os.path.expanduser(where)))


class LocalBlobStore:
    """Objects as files ``<root>/<first 2 hex>/<sha256>``, each written to a temporary file in
    ``<root>/tmp`` (the same file system) and renamed into place: a reader never sees half an
    object, a crash leaves only a temporary file, and servers sharing ``root`` may write one
    object at once (each renames its own complete copy; either wins)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

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

    def _commit(self, out: IO[bytes], rest: bytes, tmp: str, sha256: str) -> None:
        """Finish the temporary file and rename it into place (unless the object is there)."""
        out.write(rest)
        out.flush()
        os.fsync(out.fileno())
        out.close()
        final = self.path(sha256)
        if final.is_file():  # stored already (e.g. a run file whose hash was learned at its end)
            os.unlink(tmp)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)  # the same bytes may land twice at once: either rename wins
        _fsync_dir(final.parent)

    async def put(self, chunks: AsyncIterator[bytes], sha256: str | None = None) -> Stored:
        """Store the stream (as ``sha256`` if given, checked); returns its name and size."""
        if sha256 is not None and await run_in_threadpool(self.exists, check_sha256(sha256)):
            digest, size, _rest = await drain(chunks, _CHUNK, None)  # verify, write nothing
            return Stored(expect(sha256, digest, size), size)
        tmp, out = await run_in_threadpool(self._open_temp)
        try:
            digest, size, rest = await drain(chunks, _CHUNK, out.write)
            found = expect(sha256, digest, size)
            await run_in_threadpool(self._commit, out, rest, tmp, found)
        except BaseException:
            out.close()
            Path(tmp).unlink(missing_ok=True)
            raise
        return Stored(found, size)


async def drain(
    chunks: AsyncIterator[bytes], piece: int, sink: Callable[[bytes], Any] | None
) -> tuple[Any, int, bytes]:
    """Hash the stream, handing ``sink`` pieces of at least ``piece`` bytes in the thread pool;
    returns ``(digest, size, rest)``: ``rest`` (under ``piece`` bytes) is hashed, not sunk.
    :class:`PayloadTooLarge` past :data:`MAX_BLOB_BYTES`."""
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BLOB_BYTES:
            raise PayloadTooLarge(
                f"the upload is over the {MAX_BLOB_BYTES >> 20} MiB limit; store larger "
                "files elsewhere"
            )
        pending += chunk
        if len(pending) >= piece:
            await run_in_threadpool(_feed, digest, sink, bytes(pending))
            pending.clear()
    rest = bytes(pending)
    await run_in_threadpool(_feed, digest, None, rest)
    return digest, size, rest


def expect(sha256: str | None, digest: Any, size: int) -> str:
    """The stream's SHA-256; :class:`BadRequest` if ``sha256`` was named and it is not that."""
    found = str(digest.hexdigest())
    if sha256 is not None and found != sha256:
        raise BadRequest(
            f"the uploaded bytes ({size} bytes) hash to {found}, not to {sha256}; upload a "
            "blob under the SHA-256 of its bytes"
        )
    return found


def _feed(digest: Any, sink: Callable[[bytes], Any] | None, data: bytes) -> None:
    digest.update(data)
    if sink is not None:
        sink(data)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    with f:
        while chunk := f.read(_CHUNK):
            yield chunk
