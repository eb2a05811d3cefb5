"""``log()`` is an append in memory: it neither waits nor raises while the daemon is being
killed over and over or cannot be started at all, and nothing is lost once a daemon runs.
(The latency figures are in ``bench/link_latency.py``; these tests assert the behaviour.)"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import trackd

from tests._support.procs import daemon_dir, daemon_pid

pytestmark = pytest.mark.serial  # a latency bound: run alone (see the Makefile)

SLOW_CALL = 0.05  # seconds: a log() this slow waited on something


def _log_timed(run: trackd.Run, start: int, count: int, pause: float) -> list[float]:
    took = []
    for i in range(start, start + count):
        t0 = time.perf_counter()
        run.log({"i": i, "x": 0.5})
        took.append(time.perf_counter() - t0)
        if i % 1000 == 999:
            time.sleep(pause)  # spread the calls over the trouble
    return took


def test_log_never_waits_while_no_daemon_can_start() -> None:
    sock = daemon_dir() / "daemon.sock"
    sock.mkdir()  # every daemon started exits at once: it cannot bind its socket
    with pytest.warns(UserWarning, match="has not accepted run"):
        run = trackd.init(project="p")
    took = _log_timed(run, 0, 30_000, 0.01)
    assert max(took) < SLOW_CALL, f"a log() call took {max(took):.3f} s"
    assert not (daemon_dir() / "daemon.pid").exists()
    sock.rmdir()  # a daemon can run again
    run.finish()
    data = trackd.read_run(run.dir)
    assert [r["i"] for r in data.history] == list(range(30_000))
    assert data.state == "finished"


def test_log_never_waits_while_the_daemon_is_killed_in_a_loop() -> None:
    run = trackd.init(project="p")
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        while not stop.wait(0.25):
            try:
                pid = daemon_pid()
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (OSError, ValueError):
                pass  # between daemons

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        took = _log_timed(run, 0, 100_000, 0.02)
    finally:
        stop.set()
        thread.join()
    assert len(set(killed)) >= 3, killed
    assert max(took) < SLOW_CALL, f"a log() call took {max(took):.3f} s"
    run.finish()
    data = trackd.read_run(run.dir)
    assert [r["i"] for r in data.history] == list(range(100_000))
    assert data.state == "finished"
