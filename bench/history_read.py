"""History reads at scale, on SQLite and PostgreSQL, beside the row-per-point layout of before.

For each database: a real server (subprocess) gets one run of 1,000,000 steps of one scalar
and 20 runs x 10 keys x 10,000 steps, posted as ingest batches; then each read is timed over
HTTP (median of ``--repeat``, with the answer's size):

- ``downsample_1m_to_1000``: one key of the 1M-step run, 1,000 points, min and max kept
- ``zoom_700k_800k``: the same key, steps 700,000..800,000, 1,000 points
- ``zoom_full_resolution``: steps 700,000..700,900 (fewer points than asked for: all of them)
- ``bulk_20x10x10k_{json,msgpack,columns}``: the bulk endpoint, 1,000 points per series
- ``live_tail``: the bulk endpoint, points after step 999,000 of the 1M-step run

The baseline is the layout before migration 6, kept here: one row per (run, key, step) in a
``history`` table with the same primary key, read with the query and the Python
downsampling of before, in-process (no HTTP, so the baseline is flattered).

Usage: ``python bench/history_read.py [--repeat 7] [--no-postgres]``; prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trackd._wire import records as p  # noqa: E402
from trackd.server._db import database_url, unpooled_engine  # noqa: E402
from trackd.server._migrations import migrate  # noqa: E402

from tests._support.postgres import postgres_cluster  # noqa: E402
from tests._support.server import ServerProcess, running_server  # noqa: E402

BIG = 1_000_000
RUNS, KEYS, STEPS = 20, 10, 10_000
BULK = "/entities/admin/projects/bench/history"


def _value(step: int) -> float:
    return math.sin(step / 1000.0) + (50.0 if step == 777_777 else 0.0)


def _post_history(server: ServerProcess, run_id: str, keys: list[str], steps: int) -> None:
    records: list[list[Any]] = [
        [p.RUN_START, run_id, 1, None, "bench", run_id, None, None, [], None, {}, time.time(),
         "h", 1, None, None, "online"]
    ]  # fmt: skip
    seq = 2
    with server.client() as client:
        for step in range(steps):
            data = {k: _value(step) + i for i, k in enumerate(keys)}
            records.append([p.HISTORY, run_id, seq, step, 1.7e9 + step, data])
            seq += 1
            if len(records) >= 50_000 // len(keys) or step == steps - 1:
                doc = {"entity": None, "project": "bench", "run_id": run_id, "records": records}
                body = msgpack.packb(doc, use_bin_type=True)
                headers = {"Content-Type": "application/msgpack"}
                client.post("/ingest", content=body, headers=headers).raise_for_status()
                records = []


def _timed(call: Callable[[], bytes], repeat: int) -> dict[str, Any]:
    call()  # warm
    times, size = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        size = len(call())
        times.append(time.perf_counter() - began)
    return {"median_ms": round(statistics.median(times) * 1000, 2), "bytes": size}


def _new_layout(server: ServerProcess, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with server.client() as client:
        hist = "/runs/admin/bench/big/history"

        def get(accept: str = "application/json", **params: Any) -> Callable[[], bytes]:
            def call() -> bytes:
                response = client.get(hist, params=params, headers={"Accept": accept})
                response.raise_for_status()
                return response.content

            return call

        def bulk(accept: str, **body: Any) -> Callable[[], bytes]:
            def call() -> bytes:
                response = client.post(BULK, json=body, headers={"Accept": accept})
                response.raise_for_status()
                return response.content

            return call

        out["downsample_1m_to_1000"] = _timed(get(keys="y", samples=1000), repeat)
        spike = json.loads(get(keys="y", samples=1000)())["keys"]["y"]
        out["spike_kept"] = 777_777 in spike["step"]
        out["zoom_700k_800k"] = _timed(
            get(keys="y", samples=1000, min_step=700_000, max_step=800_000), repeat
        )
        out["zoom_full_resolution"] = _timed(
            get(keys="y", samples=1000, min_step=700_000, max_step=700_900), repeat
        )
        runs = [f"r{i}" for i in range(RUNS)]
        keys = [f"k{i}" for i in range(KEYS)]
        for name, accept in (
            ("json", "application/json"),
            ("msgpack", "application/msgpack"),
            ("columns", "application/vnd.trackd.columns+msgpack"),
        ):
            out[f"bulk_20x10x10k_{name}"] = _timed(
                bulk(accept, runs=runs, keys=keys, samples=1000), repeat
            )
        out["live_tail"] = _timed(
            bulk("application/json", runs=["big"], keys=["y"], after_step=BIG - 1000), repeat
        )
    return out


# ---- the baseline: the row-per-point layout and reads of before migration 6 ----


def _old_select_points(steps: list[int], values: list[Any], samples: int) -> list[int]:
    n = len(steps)
    if samples <= 0 or n <= samples:
        return list(range(n))
    buckets = max(1, samples // 2)
    first, width = steps[0], (steps[-1] - steps[0] + 1) / buckets
    chosen: list[int] = []
    current: list[int] = []
    bucket = 0
    for i, step in enumerate(steps):
        b = min(int((step - first) / width), buckets - 1)
        if b != bucket and current:
            chosen.extend(_old_bucket(current, values))
            current = []
        bucket = b
        current.append(i)
    chosen.extend(_old_bucket(current, values))
    return sorted(chosen)


def _old_bucket(indices: list[int], values: list[Any]) -> list[int]:
    lo = hi = None
    for i in indices:
        v = values[i]
        if lo is None or v < values[lo]:
            lo = i
        if hi is None or v > values[hi]:
            hi = i
    return [i for i in {lo, hi} if i is not None]


_OLD_QUERY = (
    "SELECT k.key, h.step, h.time, h.kind, h.num, h.ival, h.text FROM history h "
    "JOIN run_keys k ON k.id = h.key_id WHERE h.run_pk = 1 AND k.key = 'y' "
    "AND h.step >= :lo AND h.step <= :hi ORDER BY h.key_id, h.step"
)


def _baseline(url: str, repeat: int) -> dict[str, Any]:
    engine = unpooled_engine(url)
    migrate(engine, upto=4)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO entities (id, name, kind, created_at) VALUES (1, 'a', 'user', 0)")
        )
        conn.execute(
            text("INSERT INTO projects (id, entity_id, name, created_at) VALUES (1, 1, 'b', 0)")
        )
        conn.execute(
            text("INSERT INTO runs (id, project_id, run_id, name, tags, state, config, summary, "
                 "summary_state, created_at, heartbeat_at, last_seq) VALUES (1, 1, 'big', 'big', "
                 "'[]', 'running', :b, :b, :b, 0, 0, 0)"),
            {"b": b""},
        )  # fmt: skip
        conn.execute(text("INSERT INTO run_keys (id, run_pk, key) VALUES (1, 1, 'y')"))
        insert = text(
            "INSERT INTO history (run_pk, key_id, step, time, kind, num) "
            "VALUES (1, 1, :s, :t, 4, :v)"
        )
        for start in range(0, BIG, 100_000):
            rows = [{"s": s, "t": 1.7e9 + s, "v": _value(s)} for s in range(start, start + 100_000)]
            conn.execute(insert, rows)

    def read(lo: int, hi: int, samples: int) -> Callable[[], bytes]:
        def call() -> bytes:
            with engine.connect() as conn:
                rows = list(conn.execute(text(_OLD_QUERY), {"lo": lo, "hi": hi}))
            steps = [r[1] for r in rows]
            values = [r[4] for r in rows]
            keep = _old_select_points(steps, values, samples)
            doc = {"step": [steps[i] for i in keep], "value": [values[i] for i in keep]}
            return json.dumps(doc).encode()

        return call

    try:
        return {
            "downsample_1m_to_1000": _timed(read(0, BIG, 1000), max(1, repeat // 3)),
            "zoom_700k_800k": _timed(read(700_000, 800_000, 1000), repeat),
            "zoom_full_resolution": _timed(read(700_000, 700_900, 1000), repeat),
        }
    finally:
        engine.dispose()


def _measure(tmp: Path, db: str | None, repeat: int) -> dict[str, Any]:
    with running_server(tmp / "server", db=db) as server:
        began = time.perf_counter()
        _post_history(server, "big", ["y"], BIG)
        for r in range(RUNS):
            _post_history(server, f"r{r}", [f"k{i}" for i in range(KEYS)], STEPS)
        loaded = time.perf_counter() - began
        new = _new_layout(server, repeat)
    new["load_seconds_3m_values"] = round(loaded, 1)
    return new


@contextlib.contextmanager
def _databases(use_postgres: bool) -> Iterator[list[tuple[str, str | None, str | None]]]:
    """``(name, --db for the server, URL for the baseline)`` per database."""
    with tempfile.TemporaryDirectory(prefix="trkh-") as tmp:
        sqlite_base = database_url(None, Path(tmp))
        dbs: list[tuple[str, str | None, str | None]] = [("sqlite", None, sqlite_base)]
        if not use_postgres:
            yield dbs
            return
        with postgres_cluster() as cluster:
            dbs.append(("postgresql", cluster.fresh_url(), cluster.fresh_url()))
            yield dbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with _databases(not args.no_postgres) as dbs:
        for name, db, base_url in dbs:
            with tempfile.TemporaryDirectory(prefix="trkh-") as tmp:
                new = _measure(Path(tmp), db, args.repeat)
            assert base_url is not None
            old = _baseline(database_url(base_url, Path("/nonexistent")), args.repeat)
            ratios = {
                k: round(old[k]["median_ms"] / max(new[k]["median_ms"], 0.01), 1) for k in old
            }
            out[name] = {"blocks": new, "row_per_point_baseline": old, "speedup": ratios}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
