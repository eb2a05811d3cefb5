"""End-to-end ingest: one training process -> one daemon -> the server, on SQLite and PostgreSQL.

Each scenario runs in a fresh process against a fresh real server, logging through
``trackd.log`` in online mode, and measures until the server holds the last record
(``finish()`` waits for that):

- ``sqlite``, ``postgresql``: ``--records`` records of 10 scalars; scalar values per second
  over the whole span (log and upload).
- ``finish_1m``: 1,000,000 records of one scalar logged as fast as possible (SQLite); how long
  ``finish()`` takes after the last ``log()``.

Usage: ``python bench/ingest.py [--records 300000] [--only sqlite,postgresql,finish_1m]``;
prints JSON, with the CPU seconds the training process, the daemon and the server spent
(on 2 cores, their sum bounds how fast the run can go). Targets (issue 9): 1,000,000
values/s into SQLite, PostgreSQL within 2x of that, ``finish()`` within 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._support.postgres import postgres_cluster  # noqa: E402
from tests._support.server import running_server  # noqa: E402 - the same launcher tests use

KEYS = [f"metric_{i}" for i in range(10)]


def _scenario(records: int, keys: list[str], db: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="trki-") as tmp:
        with running_server(Path(tmp) / "server", db=db) as server:
            os.environ.update(
                TRACKD_BASE_URL=server.url,
                TRACKD_API_KEY=server.admin_key,
                TRACKD_DIR=f"{tmp}/runs",
                TRACKD_DAEMON_DIR=f"{tmp}/d",
                TRACKD_SILENT="1",
                TRACKD_FINISH_TIMEOUT="600",
            )
            import trackd

            run = trackd.init(project="bench")
            daemon_pid = int((Path(tmp) / "d" / "daemon.pid").read_text())
            assert server.proc is not None
            procs = {
                "client": psutil.Process(),
                "daemon": psutil.Process(daemon_pid),
                "server": psutil.Process(server.proc.pid),
            }
            cpu_before = {name: _cpu(proc) for name, proc in procs.items()}
            rows = [{k: float(i * (j + 1)) for j, k in enumerate(keys)} for i in range(1000)]
            start = time.perf_counter()
            for i in range(records):
                trackd.log(rows[i % 1000])
            logged = time.perf_counter()
            trackd.finish()
            done = time.perf_counter()
            cpu = {name: round(_cpu(proc) - cpu_before[name], 2) for name, proc in procs.items()}
            remote = httpx.get(
                f"{server.url}/api/v1/runs/admin/bench/{run.id}",
                headers={"Authorization": f"Bearer {server.admin_key}"},
                trust_env=False,
                timeout=30,
            ).json()
    values = records * len(keys)
    return {
        "records": records,
        "scalar_values": values,
        "log_seconds": round(logged - start, 3),
        "finish_seconds_after_last_log": round(done - logged, 3),
        "end_to_end_seconds": round(done - start, 3),
        "values_per_s_end_to_end": round(values / (done - start)),
        "all_records_on_server": remote["last_step"] == records - 1,
        "cpu_seconds": cpu,  # user + system, from the first log() to finish()'s return
    }


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _child(name: str, records: int, db: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, "--records", str(records)]
    if db:
        cmd += ["--db", db]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1200)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--only", default="sqlite,postgresql,finish_1m")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        keys = KEYS[:1] if args.child == "finish_1m" else KEYS
        print(json.dumps(_scenario(args.records, keys, args.db)))
        return
    wanted = args.only.split(",")
    out: dict[str, Any] = {}
    if "sqlite" in wanted:
        out["sqlite"] = _child("sqlite", args.records, None)
    if "postgresql" in wanted:
        with postgres_cluster() as cluster:
            out["postgresql"] = _child("postgresql", args.records, cluster.fresh_url())
    if "finish_1m" in wanted:
        out["finish_1m_single_scalar"] = _child("finish_1m", 1_000_000, None)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
