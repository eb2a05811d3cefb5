"""Reused memory for large records (rows of images) held until the daemon has them.

A record is kept from ``log()`` until the daemon acks it as durable, or until the I/O thread
has written it to the spill file. Copied into a fresh ``bytes`` each time, a 196 KB record
lands in pages the process has never touched, and the page faults cost the training thread
more than packing the record (measured: pack and keep 133 µs, pack and drop 21 µs). The pool
hands out buffers that earlier records used: one is given back when its record is acked or
spilled, and the next record of about that size is copied into it.

Buffers come in sizes rounded up to ``GRAIN``; the pool keeps at most ``limit`` bytes of free
buffers, and drops them all once no large record was logged for ``IDLE_SECONDS``. The training
thread takes buffers, the I/O thread gives them back: one small lock guards the free lists.
"""

from __future__ import annotations

import mmap
import threading
import time

GRAIN = 64 << 10
SMALL = 16 << 10  # records below this are plain bytes: malloc reuses their memory anyway
IDLE_SECONDS = 30.0


def _size_class(n: int) -> int:
    return -(-n // GRAIN) * GRAIN


class BufferPool:
    """Free buffers by size class: :meth:`copy` on the training thread, :meth:`give` after."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free: dict[int, list[mmap.mmap]] = {}
        self._free_bytes = 0
        self._lock = threading.Lock()
        self._last_take = 0.0

    def copy(self, data: memoryview | bytes) -> memoryview | bytes:
        """``data`` copied into a pooled buffer (a view of exactly its length), or into
        plain bytes if it is small."""
        n = len(data)
        if n < SMALL:
            return bytes(data)
        size = _size_class(n)
        with self._lock:
            free = self._free.get(size)
            buf = free.pop() if free else None
            if buf is not None:
                self._free_bytes -= size
            self._last_take = time.monotonic()
        if buf is None:  # the pool ran dry: fresh pages, faulted once, by the copy below
            buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = memoryview(buf)[:n]
        view[:] = data
        return view

    def give(self, blob: memoryview | bytes) -> None:
        """Take back the buffer behind ``blob`` if the pool made it (plain bytes are not)."""
        if type(blob) is not memoryview:
            return
        buf = blob.obj
        blob.release()
        if type(buf) is not mmap.mmap or len(buf) % GRAIN:
            return
        size = len(buf)
        with self._lock:
            if self._free_bytes + size <= self.limit:
                self._free.setdefault(size, []).append(buf)
                self._free_bytes += size

    def trim(self, now: float) -> None:
        """Drop every free buffer once large records stopped (the I/O thread calls this)."""
        if self._free_bytes and now - self._last_take > IDLE_SECONDS:
            with self._lock:
                self._free.clear()
                self._free_bytes = 0

    @property
    def free_bytes(self) -> int:
        return self._free_bytes
