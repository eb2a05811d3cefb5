"""The pool of buffers for large records, and the spill file's in-memory tail (pure logic
and one real file each; the end-to-end path is in tests/e2e/test_media.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from trackd._buffers import GRAIN, BufferPool
from trackd._spill import Spill
from trackd._wire.runlog import iter_frames


def test_a_given_back_buffer_is_reused_for_a_record_of_about_its_size() -> None:
    pool = BufferPool(limit=1 << 20)
    first = pool.copy(b"a" * 20000)
    assert isinstance(first, memoryview) and bytes(first) == b"a" * 20000
    buf = first.obj
    pool.give(first)
    assert pool.free_bytes == GRAIN
    second = pool.copy(b"b" * 30000)  # the same size class: the same memory
    assert isinstance(second, memoryview)
    assert second.obj is buf and bytes(second) == b"b" * 30000
    bigger = pool.copy(b"c" * (GRAIN + 1))  # another class: new memory
    assert isinstance(bigger, memoryview)
    assert bigger.obj is not buf and len(bigger.obj) == 2 * GRAIN
    assert type(pool.copy(b"small")) is bytes  # small records are not pooled


def test_the_pool_keeps_at_most_its_limit_and_ignores_plain_bytes() -> None:
    pool = BufferPool(limit=2 * GRAIN)
    views = [pool.copy(b"x" * 20000) for _ in range(3)]
    for view in views:
        pool.give(view)
    assert pool.free_bytes == 2 * GRAIN
    pool.give(b"plain bytes")
    assert pool.free_bytes == 2 * GRAIN
    pool.trim(now=10**9)  # long after the last copy: every free buffer is dropped
    assert pool.free_bytes == 0


def _frames(path: Path) -> list[bytes]:
    return [payload for payload, _end in iter_frames(path.read_bytes(), 0)]


def test_the_tail_keeps_order_with_records_written_at_once(tmp_path: Path) -> None:
    released: list[bytes | memoryview] = []
    spill = Spill(tmp_path / "spill", release=released.append)
    spill.append(b"big-1", later=True)
    spill.append(b"big-2", later=True)
    spill.append(b"small-3")  # written at once, so the tail goes first
    spill.append(b"big-4", later=True)
    assert spill.count == 4 and _frames(spill.path) == [b"big-1", b"big-2", b"small-3"]
    spill.write_tail()
    assert _frames(spill.path) == [b"big-1", b"big-2", b"small-3", b"big-4"]
    assert released == [b"big-1", b"big-2", b"big-4"] and spill.tail_bytes == 0


def test_a_full_tail_is_written_by_the_appending_thread(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("trackd._spill.TAIL_BYTES", 10)
    spill = Spill(tmp_path / "spill")
    spill.append(b"12345678", later=True)  # fits the tail
    spill.append(b"abcdefgh", later=True)  # would not: both are written now
    assert _frames(spill.path) == [b"12345678", b"abcdefgh"] and not spill.tail


def test_rewrite_and_close_write_the_tail_first(tmp_path: Path) -> None:
    spill = Spill(tmp_path / "spill")
    spill.append(b"new", later=True)
    spill.rewrite([b"old"])  # older records go in front of the tail
    assert _frames(spill.path) == [b"old", b"new"] and spill.count == 2
    spill.append(b"newest", later=True)
    spill.close(remove=False)
    assert _frames(spill.path) == [b"old", b"new", b"newest"]


def test_a_writer_thread_and_an_appending_thread_keep_every_record_in_order(
    tmp_path: Path,
) -> None:
    spill = Spill(tmp_path / "spill")
    done = threading.Event()

    def writer() -> None:
        while not done.is_set():
            spill.write_tail()

    thread = threading.Thread(target=writer)
    thread.start()
    for i in range(3000):
        spill.append(b"r%d" % i, later=i % 3 != 0)
    done.set()
    thread.join()
    spill.write_tail()
    assert _frames(spill.path) == [b"r%d" % i for i in range(3000)]
