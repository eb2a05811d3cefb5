"""A training process's spill file: records it could not keep in memory, in order, on disk.

The training thread appends under the transport's queue lock. A large record (a row of
images) is only put on the file's in-memory tail, which the transport's I/O thread writes
with :meth:`Spill.write_tail` (the checksum and the ``write`` release the GIL, so they run
beside training, not in it); a small one, or any record once the tail holds ``TAIL_BYTES``,
is written at once, after the tail, by the training thread. The I/O thread reads from the
front with :meth:`Spill.read` outside the queue lock and gives the bytes back with
:meth:`Spill.consume` under it, which empties the file once it is drained. ``count`` counts
the tail too. Frames are the run log's (see :mod:`trackd._wire.runlog`), so the daemon can
read a dead client's spill file the same way it reads a run log.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ._wire.runlog import frame, frame_head, iter_frames

TAIL_BYTES = 8 << 20  # records waiting in memory for the I/O thread to write them


class Spill:
    """Records not yet handed to the daemon, in order, on disk (and a short tail in memory)."""

    def __init__(
        self, path: Path, release: Callable[[bytes | memoryview], None] | None = None
    ) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.read_offset = 0
        self.count = 0
        self.tail: deque[bytes | memoryview] = deque()
        self.tail_bytes = 0
        self._write_lock = threading.Lock()  # file writes and truncation, in order
        self._release = release  # gets each tail record back once it is on disk

    def append(self, payload: bytes | memoryview, later: bool = False) -> None:
        """Add a record after every other. ``later``: the I/O thread may write it (the caller
        hands ``payload`` over and never changes it)."""
        self.count += 1
        if later and self.tail_bytes + len(payload) <= TAIL_BYTES:
            self.tail.append(payload)
            self.tail_bytes += len(payload)
            return
        with self._write_lock:
            self._write_tail_locked()
            _write_frame(self.fd, payload)
        if later and self._release is not None:
            self._release(payload)

    def write_tail(self) -> None:
        """Write the in-memory tail to the file, oldest first."""
        if self.tail:
            with self._write_lock:
                self._write_tail_locked()

    def _write_tail_locked(self) -> None:
        tail = self.tail
        while tail:
            payload = tail[0]
            _write_frame(self.fd, payload)
            tail.popleft()
            self.tail_bytes -= len(payload)
            if self._release is not None:
                self._release(payload)

    def read(self, max_bytes: int) -> tuple[list[bytes], int]:
        """Up to ``max_bytes`` of payloads from the front, and the bytes they span.

        Safe beside :meth:`append`: it reads only whole frames written before it began."""
        offset = self.read_offset
        size = os.fstat(self.fd).st_size
        data = os.pread(self.fd, min(size - offset, max_bytes + (1 << 16)), offset)
        out: list[bytes] = []
        taken = 0
        for payload, end in iter_frames(data, 0):
            out.append(payload)
            taken = end
            if taken >= max_bytes:
                break
        return out, taken

    def consume(self, count: int, nbytes: int) -> None:
        """Forget what :meth:`read` returned; empties the file when nothing is left."""
        self.read_offset += nbytes
        self.count -= count
        if self.count == 0:  # the tail is empty too: every record was read from the file
            with self._write_lock:
                os.ftruncate(self.fd, 0)
            self.read_offset = 0

    def rewrite(self, before: list[bytes | memoryview]) -> None:
        """Put ``before`` (records older than the file's) in front of what is left unread."""
        self.write_tail()
        size = os.fstat(self.fd).st_size
        rest = os.pread(self.fd, size - self.read_offset, self.read_offset)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(frame(payload) for payload in before) + rest)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        self.read_offset = 0
        self.count += len(before)

    def close(self, remove: bool) -> None:
        self.write_tail()
        os.close(self.fd)
        if remove:
            self.path.unlink(missing_ok=True)


def _write_frame(fd: int, payload: bytes | memoryview) -> None:
    os.writev(fd, (frame_head(payload), payload))
