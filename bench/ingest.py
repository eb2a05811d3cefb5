"""End-to-end ingest: one training process -> one daemon -> the server on SQLite, as JSON.

Starts a real server (SQLite, temp dir) and logs ``--records`` records of 10 scalars through
``trackd.log`` in online mode, then measures until the server holds the last record
(``finish()`` waits for that). Reports scalar values per second over the whole span and
over the upload alone, and checks the server's record count.

Usage: ``python bench/ingest.py [--records 300000]``. Target: 200,000 scalar values/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._support.server import running_server  # noqa: E402 - the same launcher tests use

KEYS = [f"metric_{i}" for i in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trki-") as tmp:
        with running_server(Path(tmp) / "server") as server:
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
            rows = [{k: float(i * (j + 1)) for j, k in enumerate(KEYS)} for i in range(1000)]
            start = time.perf_counter()
            for i in range(args.records):
                trackd.log(rows[i % 1000])
            logged = time.perf_counter()
            trackd.finish()
            done = time.perf_counter()
            remote = httpx.get(
                f"{server.url}/api/v1/runs/admin/bench/{run.id}",
                headers={"Authorization": f"Bearer {server.admin_key}"},
                trust_env=False,
                timeout=30,
            ).json()
    values = args.records * len(KEYS)
    out = {
        "records": args.records,
        "scalar_values": values,
        "log_seconds": round(logged - start, 3),
        "end_to_end_seconds": round(done - start, 3),
        "values_per_s_end_to_end": round(values / (done - start)),
        "server_last_step": remote["last_step"],
        "server_state": remote["state"],
        "all_records_on_server": remote["last_step"] == args.records - 1,
    }
    out["target_200k_values_per_s_met"] = out["values_per_s_end_to_end"] >= 200_000
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
