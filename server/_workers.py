"""``--workers N``: N server processes answering on one port, restarted if one dies.

The parent binds the port once; each worker is a spawned process (its own interpreter,
database pool and reaper) serving that one listening socket, so the kernel hands each new
connection to whichever worker accepts it first. Workers hold no state another needs: like
replicas on several machines, they share only the PostgreSQL database and the file store.
SIGTERM or SIGINT to the parent stops every worker (each finishing its requests); a worker
that exits otherwise (e.g. ``kill -9``) is started again. A worker whose parent is gone (even
``kill -9``-ed) stops itself, so no worker is left serving the port alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from types import FrameType

from ._settings import Settings

log = logging.getLogger("trackd.server")
STOP_TIMEOUT = 10.0


Target = Callable[[Settings, socket.socket], None]


def run_workers(settings: Settings, sock: socket.socket, target: Target) -> None:
    """Run ``target(settings, sock)`` (a module-level function: it is pickled) in
    ``settings.workers`` processes until SIGTERM/SIGINT."""
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: list[BaseProcess] = []
    try:
        workers = [_start(context, target, settings, sock) for _ in range(settings.workers)]
        while not stop.wait(0.2):
            for index, worker in enumerate(workers):
                if not worker.is_alive():
                    log.warning(
                        "trackd: worker %s exited with %s; starting another",
                        worker.pid,
                        worker.exitcode,
                    )
                    workers[index] = _start(context, target, settings, sock)
    finally:
        _stop_all(workers)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_with_parent(interval: float = 0.5) -> None:
    """In a worker: SIGTERM to itself once its parent has exited (a thread checks every
    ``interval`` seconds)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("trackd: the server's main process exited; worker %s stops", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="trackd-parent-watch", daemon=True).start()


def _start(
    context: SpawnContext, target: Target, settings: Settings, sock: socket.socket
) -> BaseProcess:
    process = context.Process(target=target, args=(settings, sock), name="trackd-worker")
    process.start()
    return process


def _stop_all(workers: list[BaseProcess]) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: uvicorn finishes its requests, then exits
    for worker in workers:
        worker.join(STOP_TIMEOUT)
        if worker.is_alive():
            worker.kill()
            worker.join(STOP_TIMEOUT)
