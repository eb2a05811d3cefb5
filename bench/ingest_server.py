"""Ingest throughput of the trackd server: scalar values per second into its database.

Starts ``python -m trackd.server`` on a free port with a temporary data dir (SQLite unless
``--db`` is given), posts pre-encoded msgpack batches of History records (10 float keys each)
to ``/api/v1/ingest`` one after another, as the daemon's uploader does, and prints JSON;
``--columns`` sends the History records as the daemon does now (ingest body version 2,
columnar elements), otherwise as records (version 1)::

    python bench/ingest_server.py --records 400000 --batch-records 5000 [--columns]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time

import httpx
import msgpack
from trackd._wire import columns
from trackd._wire import records as p
from trackd._wire.ingest import encode_body

KEYS = [f"metric_{i}" for i in range(10)]


def _batches(run_id: str, total: int, per_batch: int, columnar: bool) -> list[tuple[bytes, int]]:
    start = p.RunStart(
        p.RUN_START, run_id, 1, None, "bench", run_id, None, None, [], None, {},
        time.time(), "bench-host", os.getpid(), None, None, "online",
    )  # fmt: skip
    out: list[tuple[bytes, int]] = []
    seq, step = 2, 0
    records: list[list[object]] = [list(start)]
    while step < total:
        data = {k: step * 0.001 + i for i, k in enumerate(KEYS)}
        records.append([p.HISTORY, run_id, seq, step, 1.7e9 + step * 0.01, data])
        seq, step = seq + 1, step + 1
        if len(records) >= per_batch or step == total:
            payloads = [msgpack.packb(r, use_bin_type=True) for r in records]
            elements = columns.build(payloads) if columnar else payloads
            body = encode_body(None, "bench", run_id, elements, 2 if columnar else 1)
            out.append((body, len(records)))
            records = []
    return out


def _start_server(data_dir: str, db: str | None, key: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "trackd.server", "--port", "0", "--data-dir", data_dir]
    if db:
        cmd += ["--db", db]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    env.update(TRACKD_ADMIN_KEY=key, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f"the server exited with {proc.wait()} before listening")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=400_000, help="History records in all")
    parser.add_argument("--batch-records", type=int, default=5000, help="records per request")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite)")
    parser.add_argument("--columns", action="store_true", help="send columnar History (v2)")
    args = parser.parse_args()
    run_id = "bench-" + secrets.token_hex(4)
    batches = _batches(run_id, args.records, args.batch_records, args.columns)
    key = "trk_" + secrets.token_urlsafe(30)
    with tempfile.TemporaryDirectory(prefix="trackd-bench-") as data_dir:
        proc, url = _start_server(data_dir, args.db, key)
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/msgpack"}
            with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
                client.post("/api/v1/ingest", content=batches[0][0]).raise_for_status()  # warm up
                began = time.perf_counter()
                for batch, _ in batches[1:]:
                    client.post("/api/v1/ingest", content=batch).raise_for_status()
                seconds = time.perf_counter() - began
        finally:
            proc.terminate()
            proc.wait(30)
    records = sum(n for _, n in batches[1:])
    result = {
        "db": "postgresql" if args.db else "sqlite",
        "records": records,
        "values": records * len(KEYS),
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds),
        "values_per_s": round(records * len(KEYS) / seconds),
        "batch_records": args.batch_records,
        "body": "columns (v2)" if args.columns else "records (v1)",
        "batch_bytes": len(batches[1][0]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
