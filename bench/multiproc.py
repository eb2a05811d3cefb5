"""Several training processes logging at full speed into one daemon, as JSON.

For 1, 2, 4 and 8 processes (``--procs``): each process is a writer of one shared offline
run (``trackd.init(id=..., writer="p3")``) and calls ``trackd.log`` with 10 floats
``--calls`` times as fast as it can, then ``finish()``. All start together. Reported per
process count:

- ``records_per_s``: all records over the time from the first ``log()`` to the last
  ``finish()`` returning (everything durable in the run logs); ``log_records_per_s``: over
  the logging alone;
- ``p50_us``/``p99_us`` per call over every call of every process, and ``finish_s`` (the
  slowest process's ``finish()``);
- ``daemon_cpu_us_per_record``: the daemon's CPU time (user + system) over the records.

Beside it, when ``wandb`` is importable (``pip install -e '.[bench]'``), the same number of
processes each logging ``--peer-calls`` rows to a wandb offline run. The targets of issue 11
are checked at the end: 8-process throughput at least the 1-process one, p50 within 1.5x of
the 1-process p50, daemon CPU per record no higher than with 1 process.

Usage: ``python bench/multiproc.py [--calls 100000] [--peer-calls 5000] [--procs 1,2,4,8]
[--rounds 1] [--no-peers]``; with ``--rounds R`` the trackd counts run R times, interleaved,
and each figure is the median of the rounds (every round is listed too): this machine is
noisy, and a 1-process run of 100,000 calls lasts under a second.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _latency import percentiles  # bench/ is on sys.path when a bench script runs

KEYS = [f"metric_{i}" for i in range(10)]


def _rows() -> list[dict[str, float]]:
    return [{k: float(i) * (j + 1) for j, k in enumerate(KEYS)} for i in range(1000)]


def _timed(log: Any, calls: int, out: Path) -> dict[str, float]:
    """Call ``log`` ``calls`` times; per-call ns go to ``out``; returns the wall times."""
    rows = _rows()
    samples = array.array("q", bytes(8 * calls))
    clock = time.perf_counter_ns
    start = time.time()
    for i in range(calls):
        t0 = clock()
        log(rows[i % 1000])
        samples[i] = clock() - t0
    logged = time.time()
    with open(out, "wb") as f:
        samples.tofile(f)
    return {"start": start, "logged": logged}


def worker_trackd(index: int, calls: int, tmp: str, go: float) -> dict[str, float]:
    import trackd

    run = trackd.init(project="bench", id="multiproc", writer=f"p{index}", mode="offline")
    _wait_until(go)
    times = _timed(run.log, calls, Path(tmp) / f"samples-{index}")
    run.finish()
    times["finished"] = time.time()
    return times


def worker_wandb(index: int, calls: int, tmp: str, go: float) -> dict[str, float]:
    import wandb

    settings = wandb.Settings(silent=True)
    run = wandb.init(mode="offline", dir=tmp, project="bench", settings=settings)
    _wait_until(go)
    times = _timed(run.log, calls, Path(tmp) / f"samples-{index}")
    run.finish()
    times["finished"] = time.time()
    return times


WORKERS = {"trackd": worker_trackd, "wandb_offline": worker_wandb}


def _wait_until(go: float) -> None:
    while time.time() < go:
        time.sleep(0.001)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_procs(kind: str, procs: int, calls: int) -> dict[str, Any]:
    """``procs`` fresh interpreters of ``kind`` started together; their merged figures."""
    with tempfile.TemporaryDirectory(prefix="trkm-") as tmp:
        env = dict(os.environ, TRACKD_DIR=f"{tmp}/runs", TRACKD_DAEMON_DIR=f"{tmp}/d")
        env.update(TRACKD_SILENT="1", WANDB_SILENT="true", WANDB_DIR=tmp)
        daemon_pid = _start_daemon(env) if kind == "trackd" else None
        cpu0 = _cpu_seconds(daemon_pid) if daemon_pid else 0.0
        go = time.time() + 3.0 + 0.5 * procs  # every interpreter is up and attached by then
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", kind, "--index", str(i)]
                + ["--calls", str(calls), "--tmp", tmp, "--go", repr(go)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(procs)
        ]
        times = []
        for child in children:
            out, _ = child.communicate(timeout=1800)
            if child.returncode != 0:
                return {"error": f"a {kind} worker exited with {child.returncode}"}
            times.append(json.loads(out.strip().splitlines()[-1]))
        samples: list[int] = []
        for i in range(procs):
            part = array.array("q")
            with open(Path(tmp) / f"samples-{i}", "rb") as f:
                part.fromfile(f, calls)
            samples.extend(part)
        result = _summary(times, samples, procs * calls)
        if daemon_pid:
            cpu = _cpu_seconds(daemon_pid) - cpu0
            result["daemon_cpu_us_per_record"] = round(cpu / (procs * calls) * 1e6, 3)
            subprocess.run(["kill", str(daemon_pid)], check=False)
        return result


def _summary(times: list[dict[str, float]], samples: list[int], records: int) -> dict[str, Any]:
    first = min(t["start"] for t in times)
    logged = max(t["logged"] for t in times)
    finished = max(t["finished"] for t in times)
    stats = percentiles(samples)
    return {
        "records": records,
        "records_per_s": round(records / (finished - first)),
        "log_records_per_s": round(records / (logged - first)),
        "p50_us": stats["p50_us"],
        "p99_us": stats["p99_us"],
        "finish_s": round(max(t["finished"] - t["logged"] for t in times), 3),
    }


def _start_daemon(env: dict[str, str]) -> int:
    """Start the daemon the workers will share; its pid, for its CPU time."""
    code = (
        "from pathlib import Path; from trackd._spawn import ensure_daemon; "
        f"ensure_daemon(Path({env['TRACKD_DAEMON_DIR']!r})).close()"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return int((Path(env["TRACKD_DAEMON_DIR"]) / "daemon.pid").read_text())


def _rounds(counts: list[int], calls: int, rounds: int) -> dict[str, Any]:
    """trackd at each process count, ``rounds`` times, the counts interleaved (1, 8, 1, 8, ...)
    so a noisy stretch of the machine hits them alike; with more than one round, each figure
    is the median of the rounds and ``rounds`` lists every round's figures."""
    runs: dict[str, list[dict[str, Any]]] = {str(n): [] for n in counts}
    for _ in range(rounds):
        for n in counts:
            runs[str(n)].append(run_procs("trackd", n, calls))
    if rounds == 1:
        return {n: found[0] for n, found in runs.items()}
    out: dict[str, Any] = {}
    for n, found in runs.items():
        if any("error" in r for r in found):
            out[n] = next(r for r in found if "error" in r)
            continue
        out[n] = {k: statistics.median(r[k] for r in found) for k in found[0]}
        out[n]["rounds"] = found
    return out


def _targets(trackd: dict[str, Any]) -> dict[str, Any]:
    one, most = trackd.get("1"), trackd.get(max(trackd, key=int))
    if not one or not most or "error" in one or "error" in most:
        return {}
    return {
        "procs_compared": max(trackd, key=int),
        "aggregate_at_least_1_proc": most["records_per_s"] >= one["records_per_s"],
        "p50_within_1_5x_of_1_proc": most["p50_us"] <= 1.5 * one["p50_us"],
        "daemon_cpu_per_record_not_higher": most["daemon_cpu_us_per_record"]
        <= one["daemon_cpu_us_per_record"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--peer-calls", type=int, default=5_000)
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=1, help="trackd rounds, interleaved; medians reported"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--go", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.index, args.calls, args.tmp, args.go)))
        return
    counts = [int(n) for n in args.procs.split(",")]
    out: dict[str, Any] = {"keys_per_call": len(KEYS), "cpus": os.cpu_count()}
    out["calls_per_proc"] = {"trackd": args.calls, "wandb_offline": args.peer_calls}
    out["trackd"] = _rounds(counts, args.calls, args.rounds)
    if not args.no_peers:
        try:
            import wandb  # noqa: F401
        except ImportError:
            out["wandb_offline"] = None
        else:
            out["wandb_offline"] = {
                str(n): run_procs("wandb_offline", n, args.peer_calls) for n in counts
            }
    out["targets_met"] = _targets(out["trackd"])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
