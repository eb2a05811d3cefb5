"""Does a server outage slow ``trackd.log``? Per-call latency online, server up vs. down, as JSON.

One online run, a dict of 10 floats per call, through the real spawned daemon to a real trackd
server (SQLite) on a loopback port:

- ``server_up``: ``--calls`` calls while the daemon uploads to the server;
- ``server_down``: the server is stopped, the daemon has noticed (its log says it is retrying),
  and the same run makes another ``--calls`` calls;
- ``ratio``: down / up for p50, p99 and p99.9. The target is that the outage stays within 2x.

Then the server is started again, ``finish()`` is timed, and the bench waits until the server
holds every record (``records_on_server``), so the figures are for a run that lost nothing.

Usage: ``python bench/outage_latency.py [--calls 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from log_latency import measure  # the same timing loop and percentiles as the main bench

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._support.procs import wait_for  # noqa: E402 - the helpers tests use
from tests._support.server import ServerProcess, running_server  # noqa: E402

PROJECT = "bench"


def _run_doc(server: ServerProcess, run_id: str) -> dict[str, Any] | None:
    with server.client(trust_env=False) as client:
        response = client.get(f"/runs/admin/{PROJECT}/{run_id}")
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def _stop_daemon(pid_file: Path) -> None:
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass  # already gone


def bench(calls: int, tmp: str, server: ServerProcess) -> dict[str, Any]:
    os.environ.update(
        TRACKD_BASE_URL=server.url,
        TRACKD_API_KEY=server.admin_key,
        TRACKD_DIR=f"{tmp}/runs",
        TRACKD_DAEMON_DIR=f"{tmp}/daemon",
        TRACKD_SILENT="1",
    )
    import trackd

    daemon_log = Path(tmp, "daemon", "daemon.log")
    run = trackd.init(project=PROJECT)
    measure(trackd.log, 1_000)  # warm up: first calls check keys, later ones take the fast path
    up = measure(trackd.log, calls)
    server.stop()
    measure(trackd.log, 1_000)  # new records, so the daemon tries to upload and finds no server
    wait_for(lambda: "server unreachable" in daemon_log.read_text(), 30, "the daemon to notice")
    down = measure(trackd.log, calls)
    server.start()
    t0 = time.perf_counter()
    run.finish()
    finish_s = time.perf_counter() - t0
    total = calls * 2 + 2_000
    doc = wait_for(
        lambda: (d := _run_doc(server, run.id)) and d["state"] == "finished" and d,
        120,
        "the server to hold the whole run",
    )
    on_server = int(doc["last_step"]) + 1
    _stop_daemon(Path(tmp, "daemon", "daemon.pid"))
    ratio = {k: round(down[k] / up[k], 2) for k in ("p50_us", "p99_us", "p999_us")}
    return {
        "mode": "online",
        "dict_size": 10,
        "server_up": up,
        "server_down": down,
        "ratio": ratio,
        "within_2x": all(r <= 2.0 for r in ratio.values()),
        "finish_s": round(finish_s, 3),
        "records_logged": total,
        "records_on_server": on_server,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith("TRACKD_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="trackd-outage-") as tmp:
        with running_server(Path(tmp) / "server") as server:
            result = bench(args.calls, tmp, server)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
