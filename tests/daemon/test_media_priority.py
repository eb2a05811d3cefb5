"""The daemon's media workers (PNG encoding) run at a lower CPU priority than the process."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from trackd._wire.settings import load
from trackd.daemon._media_work import WORKER_NICE, MediaWork


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_media_workers_yield_the_cpu() -> None:
    work = MediaWork(load(), wake=lambda: None, workers=2)
    try:
        inside = work._pool.submit(_nice).result(timeout=10)
    finally:
        work.close()
    assert inside == min(19, _nice() + WORKER_NICE)
    assert _nice() < inside  # the calling thread keeps its priority
