"""Per-call latency and throughput of ``trackd.log`` beside a floor and peers, as JSON.

Side by side in one run, each logging a dict of 10 floats per call:

- ``floor``: msgpack-pack the dict and send it NOBLOCK on a ZeroMQ DEALER to a draining
  ROUTER in another process: the least any msgpack+ZeroMQ logger can do per call;
- ``trackd``: ``trackd.log()`` through the real spawned daemon (offline mode);
- ``wandb_offline`` and ``mlflow_async``: when installed (``pip install 'trackd[bench]'``);
  they get fewer calls (``--peer-calls``) because they are slower, which the JSON says.

Usage: ``python bench/log_latency.py [--calls 200000] [--peer-calls 20000]``.
Noisy machines: compare the ratios printed in the same run, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import _latency  # bench/ is on sys.path when a bench script runs
import msgpack
import zmq
from _latency import percentiles

KEYS = [f"metric_{i}" for i in range(10)]

RECEIVER = """
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    parts = s.recv_multipart()
    if parts[-1] == b"stop":
        break
"""


def _row(i: int) -> dict[str, float]:
    x = float(i)
    return {k: x * (j + 1) for j, k in enumerate(KEYS)}


def measure(call: Callable[[int], Any], calls: int) -> dict[str, float]:
    """Time each call; the rows are built outside the timed region."""
    rows = [_row(i) for i in range(min(calls, 1000))]
    n_rows = len(rows)
    samples = [0] * calls
    clock = time.perf_counter_ns
    start = clock()
    for i in range(calls):
        row = rows[i % n_rows]
        t0 = clock()
        call(row)  # type: ignore[arg-type]
        samples[i] = clock() - t0
    total = (clock() - start) / 1e9
    return {**percentiles(samples), "calls_per_s": round(calls / total)}


def bench_floor(calls: int, tmp: str) -> dict[str, float]:
    endpoint = f"ipc://{tmp}/floor.sock"
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, endpoint], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    packer = msgpack.Packer()
    send, pack, noblock = sock.send, packer.pack, zmq.NOBLOCK
    result = measure(lambda row: send(pack(row), noblock), calls)
    sock.send(b"stop")
    proc.wait(timeout=60)
    sock.close(linger=0)
    ctx.term()
    return result


def bench_trackd(calls: int, tmp: str) -> dict[str, float]:
    os.environ.update(
        TRACKD_MODE="offline",
        TRACKD_DIR=f"{tmp}/runs",
        TRACKD_DAEMON_DIR=f"{tmp}/daemon",
        TRACKD_SILENT="1",
    )
    import trackd

    run = trackd.init(project="bench")
    result = measure(trackd.log, calls)
    t0 = time.perf_counter()
    run.finish()
    result["finish_s"] = round(time.perf_counter() - t0, 3)
    stored = len(trackd.read_run(run.dir).history)
    result["records_stored"] = stored
    assert stored == calls, f"stored {stored} of {calls}"
    from trackd import _session

    _session.teardown()
    return result


def bench_wandb(calls: int, tmp: str) -> dict[str, Any] | None:
    try:
        import wandb
    except ImportError:
        return None
    run = wandb.init(mode="offline", dir=tmp, project="bench", settings=wandb.Settings(silent=True))
    result = measure(run.log, calls)
    t0 = time.perf_counter()
    run.finish()
    result["finish_s"] = round(time.perf_counter() - t0, 3)
    return result


def bench_mlflow(calls: int, tmp: str) -> dict[str, Any] | None:
    try:
        import mlflow
    except ImportError:
        return None
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    step = [0]

    def log(row: dict[str, float]) -> None:
        mlflow.log_metrics(row, step=step[0], synchronous=False)
        step[0] += 1

    with mlflow.start_run():
        result = measure(log, calls)
        t0 = time.perf_counter()
    result["finish_s"] = round(time.perf_counter() - t0, 3)
    return result


SECTIONS: dict[str, Callable[[int, str], Any]] = {
    "floor": bench_floor,
    "trackd": bench_trackd,
    "wandb_offline": bench_wandb,
    "mlflow_async": bench_mlflow,
}


def run_section(name: str, count: int) -> Any:
    return _latency.run_section(__file__, name, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--peer-calls", type=int, default=20_000)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--only", choices=sorted(SECTIONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        with tempfile.TemporaryDirectory(prefix="trkb-") as tmp:
            print(json.dumps(SECTIONS[args.only](args.calls, tmp)))
        return
    out: dict[str, Any] = {"keys_per_call": len(KEYS), "cpus": os.cpu_count()}
    out["floor"] = run_section("floor", args.calls)
    out["trackd"] = run_section("trackd", args.calls)
    if not args.no_peers:
        out["wandb_offline"] = run_section("wandb_offline", args.peer_calls)
        out["mlflow_async"] = run_section("mlflow_async", args.peer_calls)
    t, f = out["trackd"], out["floor"]
    out["ratios"] = {
        "trackd_p50_vs_floor": round(t["p50_us"] / f["p50_us"], 2),
        "trackd_p99_vs_floor": round(t["p99_us"] / f["p99_us"], 2),
        "floor_throughput_vs_trackd": round(f["calls_per_s"] / t["calls_per_s"], 2),
    }
    for peer in ("wandb_offline", "mlflow_async"):
        if out.get(peer) and "p50_us" in out[peer]:
            out["ratios"][f"{peer}_p50_vs_trackd"] = round(out[peer]["p50_us"] / t["p50_us"], 1)
    out["targets_met"] = {
        "p50_under_10us": t["p50_us"] < 10,
        "at_least_100k_calls_per_s": t["calls_per_s"] >= 100_000,
        "within_3x_of_floor": out["ratios"]["trackd_p50_vs_floor"] <= 3,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
