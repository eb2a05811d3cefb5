"""Does trouble with the daemon slow ``trackd.log``? Per-call latency, as JSON.

One offline run per situation, a dict of 10 floats per call, paced (bursts of 1,000 calls
with a 15 ms pause) so the situation lasts a few seconds:

- ``healthy``: the daemon runs;
- ``daemon_killed_in_a_loop``: a thread kills the daemon with SIGKILL every ``--kill-every``
  seconds; the transport starts another each time and resends what was not acked;
- ``daemon_exits_at_once``: ``daemon.sock`` is a directory, so every daemon started exits
  at once (it cannot bind); the transport keeps trying in the background;
- ``daemon_dir_of_another_uid``: ``TRACKD_DAEMON_DIR`` belongs to another user (only when
  run as root, which can chown it); no daemon can be started at all.

After each, the obstacle is removed, ``finish()`` is called and the run log is read back:
``lost`` must be 0. The target: p99 under 1 ms in every situation.

Usage: ``python bench/link_latency.py [--calls 200000] [--kill-every 0.25]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _latency import percentiles  # bench/ is on sys.path when a bench script runs


def _row(i: int) -> dict[str, float]:
    return {f"metric_{k}": i * 0.001 + k for k in range(10)}


def paced(log: Callable[[dict[str, Any]], None], calls: int) -> dict[str, float]:
    """Time each call, 1,000 at a time with a 15 ms pause between."""
    rows = [_row(i) for i in range(1000)]
    samples = [0] * calls
    clock = time.perf_counter_ns
    for i in range(calls):
        row = rows[i % 1000]
        t0 = clock()
        log(row)
        samples[i] = clock() - t0
        if i % 1000 == 999:
            time.sleep(0.015)
    return percentiles(samples)


def _killer(daemon_dir: Path, every: float, stop: threading.Event) -> list[int]:
    killed: list[int] = []

    def loop() -> None:
        while not stop.wait(every):
            try:
                pid = int((daemon_dir / "daemon.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (OSError, ValueError):
                pass  # between daemons

    threading.Thread(target=loop, daemon=True).start()
    return killed


def situation(
    name: str, tmp: Path, calls: int, kill_every: float, block: Callable[[Path], Any] | None
) -> dict[str, Any]:
    import trackd

    daemon_dir = tmp / f"daemon-{name}"
    daemon_dir.mkdir(mode=0o700)
    os.environ["TRACKD_DAEMON_DIR"] = str(daemon_dir)
    undo = block(daemon_dir) if block else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # init() warns that no daemon answered
        run = trackd.init(project="bench", mode="offline")
    paced(run.log, 2_000)  # warm up the fast path
    stop = threading.Event()
    killed = _killer(daemon_dir, kill_every, stop) if name == "daemon_killed_in_a_loop" else []
    result: dict[str, Any] = paced(run.log, calls)
    stop.set()
    if undo:
        undo()
    t0 = time.perf_counter()
    run.finish()
    result["finish_s"] = round(time.perf_counter() - t0, 3)
    result["daemons_killed"] = len(killed)
    stored = len(trackd.read_run(run.dir).history)
    result["lost"] = calls + 2_000 - stored
    result["p99_under_1ms"] = result["p99_us"] < 1000
    return result


def _sock_dir(daemon_dir: Path) -> Callable[[], None]:
    sock = daemon_dir / "daemon.sock"
    sock.mkdir()
    return sock.rmdir


def _foreign_uid(daemon_dir: Path) -> Callable[[], None]:
    os.chown(daemon_dir, 65534, 65534)
    return lambda: os.chown(daemon_dir, os.getuid(), os.getgid())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--kill-every", type=float, default=0.25)
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith("TRACKD_")]:
        del os.environ[name]
    situations: dict[str, Callable[[Path], Any] | None] = {
        "healthy": None,
        "daemon_killed_in_a_loop": None,
        "daemon_exits_at_once": _sock_dir,
    }
    if os.getuid() == 0:
        situations["daemon_dir_of_another_uid"] = _foreign_uid
    out: dict[str, Any] = {"dict_size": 10}
    with tempfile.TemporaryDirectory(prefix="trk-link-") as tmp:
        os.environ.update(TRACKD_DIR=f"{tmp}/runs", TRACKD_SILENT="1")
        for name, block in situations.items():
            out[name] = situation(name, Path(tmp), args.calls, args.kill_every, block)
        from trackd import _session

        _session.teardown()
        for daemon_dir in Path(tmp).glob("daemon-*"):
            try:
                os.kill(int((daemon_dir / "daemon.pid").read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
