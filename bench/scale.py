"""Ingest into 1, 2 and 3 server replicas behind haproxy on one PostgreSQL, as JSON.

For each replica count: a fresh database, the replicas (``python -m trackd.server``, all
started the same way) and haproxy (round robin) in front; then ``--daemons`` concurrent load
generators, each posting one run's batches through haproxy one after another, as a daemon's
uploader does: the real ingest body (version 2, History as columnar elements, built by the
daemon's own code), ``--batch-records`` rows of 10 float keys per POST. Reported per count:

- ``values_per_s``: every value over the wall time from the first POST to the last answer;
- ``p50_ms``/``p99_ms``/``max_ms`` of one POST (send to answer), over every POST;
- ``cpu_cores``: CPU seconds per wall second of the replicas, of PostgreSQL (all its
  processes), of haproxy and of the load generator, and ``machine_cores``;
- ``pg_waits``: what PostgreSQL's active backends were doing, sampled every 50 ms from
  ``pg_stat_activity`` (``CPU`` when active and not waiting, else the wait event);
- ``bottleneck``: named from those figures.

The cluster is the test suite's throwaway PostgreSQL (``tests/_support/postgres.py``, needs
Debian's ``postgresql``; fsync off, as in the tests) and haproxy is Debian's package.

Usage: ``python bench/scale.py [--replicas 1,2,3] [--daemons 8] [--records 20000]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's PostgreSQL and haproxy helpers

from trackd._wire import columns  # noqa: E402
from trackd._wire import records as p  # noqa: E402
from trackd._wire.ingest import encode_body  # noqa: E402
from trackd.server._db import database_url  # noqa: E402

from tests._support.postgres import postgres_cluster  # noqa: E402
from tests._support.replicas import Haproxy, replicas  # noqa: E402

KEYS = [f"metric_{i}" for i in range(10)]


def _bodies(run_id: str, total: int, per_batch: int) -> list[bytes]:
    """The run's ingest bodies: a RunStart, then ``total`` rows in columnar batches."""
    start = p.RunStart(
        p.RUN_START, run_id, 1, None, "bench", run_id, None, None, [], None, {},
        time.time(), "bench-host", os.getpid(), None, None, "online",
    )  # fmt: skip
    out = [encode_body(None, "bench", run_id, [msgpack.packb(list(start))], 2)]
    for first in range(0, total, per_batch):
        rows = [
            [
                p.HISTORY,
                run_id,
                2 + s,
                s,
                1.7e9 + s * 0.01,
                {k: s * 0.001 + i for i, k in enumerate(KEYS)},
            ]
            for s in range(first, min(total, first + per_batch))
        ]
        elements = columns.build([msgpack.packb(r, use_bin_type=True) for r in rows])
        out.append(encode_body(None, "bench", run_id, elements, 2))
    return out


def _cpu_seconds(pids: list[int], children: bool = False) -> float:
    """CPU seconds (user + system) of ``pids`` so far; with ``children``, also of their
    children that exited (PostgreSQL's backends: one per connection, ended when it closes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        total += int(fields[13]) + int(fields[14]) if children else 0  # cutime, cstime
    return total / ticks


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every process, ours or not)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class WaitSampler(threading.Thread):
    """Counts what PostgreSQL's active client backends do, every 50 ms, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(database_url(url, Path()))
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock_waits: collections.Counter[str] = collections.Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        query = text(
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), wait_event_type, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity "
            "WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            while not self.stop.wait(0.05):
                for wait, kind, statement in conn.execute(query):
                    self.counts[wait] += 1
                    if kind == "Lock":  # which statement waits for a lock
                        self.lock_waits[statement] += 1
                conn.rollback()
        self.engine.dispose()


def _daemon(url: str, key: str, bodies: list[bytes], latencies: list[float]) -> None:
    """Post the bodies in order, each until it is answered 200, as a daemon's uploader does
    (retrying connection errors, 5xx and 429 after 0.1 s; the retries count in the POST's
    latency)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/msgpack"}
    with httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=120) as client:
        for index, body in enumerate(bodies):
            began = time.perf_counter()
            while True:
                try:
                    response = client.post("/ingest", content=body)
                except httpx.TransportError:
                    response = None
                if (
                    response is not None
                    and response.status_code < 500
                    and response.status_code != 429
                ):
                    response.raise_for_status()
                    break
                time.sleep(0.1)
            if index:  # not the RunStart
                latencies.append(time.perf_counter() - began)


def _cpu(groups: dict[str, list[int]]) -> dict[str, float]:
    used = {name: _cpu_seconds(pids) for name, pids in groups.items() if name != "postgres"}
    used["postgres"] = _cpu_seconds(_postgres_pids(), children=True)
    used["machine"] = _machine_busy_seconds()
    return used


def _measure(count: int, args: argparse.Namespace, cluster: Any, tmp: Path) -> dict[str, Any]:
    url = cluster.fresh_url()
    bodies = [_bodies(f"d{i}", args.records, args.batch_records) for i in range(args.daemons)]
    with replicas(count, tmp / f"files-{count}", url) as servers:
        with Haproxy(servers, tmp / f"haproxy-{count}") as proxy:
            groups = {
                "replicas": [s.proc.pid for s in servers if s.proc is not None],
                "postgres": [],  # every postgres process: taken when measured
                "haproxy": [proxy.proc.pid] if proxy.proc is not None else [],
                "load_generator": [os.getpid()],
            }
            latencies: list[list[float]] = [[] for _ in bodies]
            threads = [
                threading.Thread(target=_daemon, args=(proxy.url, servers[0].admin_key, b, lat))
                for b, lat in zip(bodies, latencies, strict=True)
            ]
            sampler = WaitSampler(url)
            cpu0 = _cpu(groups)
            began = time.perf_counter()
            sampler.start()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - began
            cpu = {n: (used - cpu0[n]) / seconds for n, used in _cpu(groups).items()}
            sampler.stop.set()
            sampler.join()
    busy = cpu.pop("machine")
    ordered = sorted(x for lat in latencies for x in lat)
    values = args.daemons * args.records * len(KEYS)
    waits = sum(sampler.counts.values()) or 1
    return {
        "replicas": count,
        "daemons": args.daemons,
        "values": values,
        "seconds": round(seconds, 2),
        "values_per_s": round(values / seconds),
        "posts": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "cpu_cores": {name: round(used, 2) for name, used in cpu.items()},
        "machine_busy_cores": round(busy, 2),
        "machine_cores": os.cpu_count(),
        "pg_waits": {k: round(v / waits, 3) for k, v in sampler.counts.most_common(6)},
        "pg_lock_waits_by_statement": dict(sampler.lock_waits.most_common(3)),
    }


def _bottleneck(result: dict[str, Any]) -> str:
    cpu, cores, busy = result["cpu_cores"], result["machine_cores"], result["machine_busy_cores"]
    ours = sum(cpu.values())
    top = max(cpu, key=cpu.get)
    lock_share = sum(v for k, v in result["pg_waits"].items() if k.startswith("Lock"))
    if busy >= 0.85 * cores:
        return (
            f"CPU: the machine's {cores} cores were busy ({busy:.2f} cores), {ours:.2f} of "
            f"them for this benchmark (largest: the {top}, {cpu[top]:.2f} cores), the rest "
            "for other processes"
        )
    if lock_share > 0.3:
        return f"database locks: {lock_share:.0%} of PostgreSQL's active samples wait on a lock"
    return f"none saturated ({busy:.2f} of {cores} cores busy); the largest share: {top}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="1,2,3", help="replica counts to measure")
    parser.add_argument("--daemons", type=int, default=8, help="concurrent load generators")
    parser.add_argument("--records", type=int, default=20_000, help="rows per daemon")
    parser.add_argument("--batch-records", type=int, default=1000, help="rows per POST")
    args = parser.parse_args()
    results = []
    with postgres_cluster() as cluster:
        tmp = Path(cluster.root)
        for count in (int(n) for n in args.replicas.split(",")):
            result = _measure(count, args, cluster, tmp)
            result["bottleneck"] = _bottleneck(result)
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    print(json.dumps({"scale": results, "batch_records": args.batch_records}, indent=1))


if __name__ == "__main__":
    main()
