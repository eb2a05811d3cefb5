"""A training process's spill file: records it could not keep in memory, in order, on disk.

The training thread appends (one ``write`` of one frame, under the transport's queue lock);
the transport's I/O thread reads from the front with :meth:`Spill.read` outside that lock and
gives the bytes back with :meth:`Spill.consume` under it, which empties the file once it is
drained. Frames are the run log's (see :mod:`trackd._wire.runlog`), so the daemon can read a
dead client's spill file the same way it reads a run log.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._wire.runlog import frame, iter_frames


class Spill:
    """Records not yet handed to the daemon, in order, on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.read_offset = 0
        self.count = 0

    def append(self, payload: bytes) -> None:
        os.write(self.fd, frame(payload))
        self.count += 1

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
        if self.count == 0:
            os.ftruncate(self.fd, 0)
            self.read_offset = 0

    def rewrite(self, before: list[bytes]) -> None:
        """Put ``before`` (records older than the file's) in front of what is left unread."""
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
        os.close(self.fd)
        if remove:
            self.path.unlink(missing_ok=True)
