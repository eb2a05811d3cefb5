"""Appending to a run log: buffered frames, made durable in groups.

``append()`` only buffers; ``sync()`` writes the buffer and fsyncs, after which the daemon
acks the run's highest seq. Reopening an existing log truncates a torn tail first, so new
frames are never hidden behind garbage, and recovers the last seq for de-duplication; it
reads the log a chunk at a time, so a long run costs no memory to reopen.

A failed write or fsync (a full disk, an I/O error) acks nothing: the file is cut back to
the end of the last durable frame (a short write never leaves a torn frame behind), the
frames since then go back to the buffer, and the next ``sync()`` tries again. The clients
keep every record until it is acked, so nothing is lost while the disk is full.
"""

from __future__ import annotations

import os
from pathlib import Path

from trackd._wire.records import seq_of
from trackd._wire.runlog import HEADER, frame, header_bytes, scan_end


class RunLogWriter:
    """The daemon's handle on one run's log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq = 0
        self.truncated = 0
        if path.exists() and path.stat().st_size > 0:
            end = scan_end(path)
            self.truncated = end.size - end.good_end
            if self.truncated:
                os.truncate(path, end.good_end)
            if end.last_payload is not None:
                self.last_seq = seq_of(end.last_payload)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)
        if self._file.tell() < HEADER.size:
            self._file.truncate(0)
            self._write_all(header_bytes())
        self._buffer: list[bytes] = []
        self._unsynced: list[bytes] = []  # written, not yet fsynced: rewritten if fsync fails
        self._synced_end = self._file.tell()
        self.buffered_bytes = 0
        self.synced_seq = self.last_seq
        self._written_seq = self.last_seq

    def append(self, seq: int, payload: bytes) -> None:
        self._buffer.append(frame(payload))
        self.buffered_bytes += len(payload) + 8
        self.last_seq = seq

    @property
    def dirty(self) -> bool:
        return self.synced_seq != self.last_seq

    def write(self) -> None:
        """Hand buffered frames to the OS: safe from a daemon crash, not a power cut.
        Raises ``OSError`` (after cutting the file back) if the OS cannot take them."""
        if not self._buffer:
            return
        blob = b"".join(self._buffer)
        try:
            self._write_all(blob)
        except OSError:
            self._roll_back()
            raise
        self._unsynced.append(blob)
        self._buffer.clear()
        self.buffered_bytes = 0
        self._written_seq = self.last_seq

    def _write_all(self, blob: bytes) -> None:
        view = memoryview(blob)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(f"{self.path}: the OS took no bytes of a write")
            view = view[written:]

    def _roll_back(self) -> None:
        """Cut the file to the last durable frame; what was written since goes back to the
        front of the buffer, to be written again."""
        try:
            os.ftruncate(self._file.fileno(), self._synced_end)
        except OSError:
            pass  # the next write is appended after whatever is there; scan cuts a torn tail
        if self._unsynced:
            self._buffer[:0] = self._unsynced
            self.buffered_bytes = sum(len(b) for b in self._buffer)
            self._unsynced.clear()
        self._written_seq = self.synced_seq

    def sync(self) -> int:
        """Write and fsync; returns the seq now durable. Raises ``OSError`` if the disk
        refuses (nothing new is durable then, and the next call tries again)."""
        self.write()
        try:
            os.fsync(self._file.fileno())
        except OSError:
            self._roll_back()
            raise
        self._unsynced.clear()
        self._synced_end = self._file.tell()
        self.synced_seq = self._written_seq
        return self.synced_seq

    def close(self) -> None:
        """Make everything durable (``OSError`` if the disk refuses) and close the file."""
        if not self._file.closed:
            try:
                self.sync()
            finally:
                self._file.close()
