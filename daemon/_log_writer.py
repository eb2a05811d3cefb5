"""Appending to a run log: buffered frames, made durable in groups.

``append()`` only buffers; ``sync()`` writes the buffer and fsyncs, after which the daemon
acks the run's highest seq. Reopening an existing log truncates a torn tail first, so new
frames are never hidden behind garbage, and recovers the last seq for de-duplication.
"""

from __future__ import annotations

import os
from pathlib import Path

from trackd._wire.records import seq_of
from trackd._wire.runlog import HEADER, frame, header_bytes, scan


class RunLogWriter:
    """The daemon's handle on one run's log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq = 0
        self.truncated = 0
        if path.exists() and path.stat().st_size > 0:
            result = scan(path)
            self.truncated = result.size - result.good_end
            if self.truncated:
                os.truncate(path, result.good_end)
            for payload in reversed(result.payloads):
                self.last_seq = seq_of(payload)
                break
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the run
        if self._file.tell() < HEADER.size:
            self._file.truncate(0)
            self._file.write(header_bytes())
        self._buffer: list[bytes] = []
        self.buffered_bytes = 0
        self.synced_seq = self.last_seq

    def append(self, seq: int, payload: bytes) -> None:
        self._buffer.append(frame(payload))
        self.buffered_bytes += len(payload) + 8
        self.last_seq = seq

    @property
    def dirty(self) -> bool:
        return self.synced_seq != self.last_seq

    def write(self) -> None:
        """Hand buffered frames to the OS: safe from a daemon crash, not a power cut."""
        if self._buffer:
            self._file.write(b"".join(self._buffer))
            self._buffer.clear()
            self.buffered_bytes = 0

    def sync(self) -> int:
        """Write and fsync; returns the seq now durable."""
        self.write()
        os.fsync(self._file.fileno())
        self.synced_seq = self.last_seq
        return self.synced_seq

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()
