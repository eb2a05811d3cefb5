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
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from log_latency import measure  # the same timing loop and percentiles as the main bench

PROJECT = "bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m trackd.server`` on a fixed port and data dir, startable again after stop."""

    def __init__(self, tmp: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = "trk_" + secrets.token_urlsafe(30)
        self.data = f"{tmp}/server"
        self.log = open(f"{tmp}/server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
        env["TRACKD_ADMIN_KEY"] = self.key
        cmd = [sys.executable, "-m", "trackd.server", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, "--data-dir", self.data], stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"the trackd server did not start; see {self.log.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

    def run_doc(self, run_id: str) -> dict[str, Any] | None:
        response = httpx.get(
            f"{self.url}/api/v1/runs/admin/{PROJECT}/{run_id}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


def _stop_daemon(pid_file: Path) -> None:
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass  # already gone


def bench(calls: int, tmp: str) -> dict[str, Any]:
    server = Server(tmp)
    server.start()
    os.environ.update(
        TRACKD_BASE_URL=server.url,
        TRACKD_API_KEY=server.key,
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
    _wait(lambda: "server unreachable" in daemon_log.read_text(), 30, "the daemon to notice")
    down = measure(trackd.log, calls)
    server.start()
    t0 = time.perf_counter()
    run.finish()
    finish_s = time.perf_counter() - t0
    total = calls * 2 + 2_000
    doc = _wait(
        lambda: (d := server.run_doc(run.id)) and d["state"] == "finished" and d,
        120,
        "the server to hold the whole run",
    )
    on_server = int(doc["last_step"]) + 1
    server.stop()
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
        result = bench(args.calls, tmp)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
