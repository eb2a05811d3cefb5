"""The runs list filtered, sorted and paged by the database (SQLite and PostgreSQL), checked
against the filters' reference meaning (``trackd.server._filters``, evaluated in Python)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import msgpack
import pytest
from sqlalchemy import text
from trackd._wire import records as p
from trackd.server._db import database_url, unpooled_engine
from trackd.server._filters import parse
from trackd.server._run_json import to_json_text

from tests._support.server import ServerProcess
from tests.server._batches import MSGPACK, ingest, run_start

RUNS = "/entities/admin/projects/proj/runs"

CONFIGS: list[dict[str, Any]] = [
    {"lr": 0.1, "opt": {"name": "adam", "beta": 0.9}, "layers": [1, 2], "flag": True},
    {"lr": 0.01, "opt": {"name": "sgd"}, "layers": 3, "flag": False, "note": None},
    {"lr": 1, "opt": "plain", "flag": 1, "name": "Zed"},
    {"lr": "high", "layers": [3, "x"], "note": "a"},
    {},
]
SUMMARIES: list[dict[str, Any]] = [
    {"loss": 0.5, "acc": {"max": 0.9}},
    {"loss": 0.2},
    {"loss": math.nan},
    {"loss": 7},
    {},
]

FILTERS: list[Any] = [
    {},
    {"config.lr": 0.1},
    {"config.lr": 1.0},
    {"config.lr": {"$gt": 0.01}},
    {"config.lr": {"$gte": 0.01, "$lt": 1}},
    {"config.lr": {"$lt": "z"}},
    {"config.opt.name": "adam"},
    {"config.opt": {"$exists": True}},
    {"config.opt": {"$exists": False}},
    {"config.layers": 3},
    {"config.layers": [1, 2]},
    {"config.layers": {"$in": [2, "x"]}},
    {"config.layers": {"$nin": [2, "x"]}},
    {"config.flag": True},
    {"config.flag": 1},
    {"config.flag": {"$ne": True}},
    {"config.note": None},
    {"summary.loss": {"$lt": 1}},
    {"summary.loss": {"$gt": 0}},
    {"summary.acc.max": {"$gte": 0.9}},
    {"tags": "base"},
    {"tags": {"$in": ["x", "nope"]}},
    {"tags": {"$nin": ["x"]}},
    {"state": "finished", "group": {"$ne": "g1"}},
    {"group": None},
    {"job_type": {"$in": ["eval", None]}},
    {"name": {"$gte": "r2"}},
    {"$or": [{"config.lr": "high"}, {"summary.loss": 0.2}]},
    {"$and": [{"config.flag": {"$exists": True}}, {"state": {"$ne": "crashed"}}]},
    {"id": {"$in": ["r0", "r4"]}},
]


def _make(admin: httpx.Client) -> None:
    for i, (config, summary) in enumerate(zip(CONFIGS, SUMMARIES, strict=True)):
        run_id = f"r{i}"
        tags = [["base", "x"], ["base"], [], ["x"], ["other"]][i]
        group = None if i == 4 else f"g{i % 2}"
        records: list[Any] = [
            run_start(
                run_id,
                config=config,
                tags=tags,
                group=group,
                job_type=["train", "eval"][i % 2],
                name=f"r{i}",
            )
        ]
        records.append(p.Summary(p.SUMMARY, run_id, 2, summary))
        records.append(
            p.Finish(p.FINISH, run_id, 3, "finished" if i % 2 else "failed", 0, time.time())
        )
        ingest(admin, run_id, records).raise_for_status()


def test_database_filters_mean_what_the_reference_filters_mean(admin: httpx.Client) -> None:
    _make(admin)
    everything = admin.get(RUNS, headers=MSGPACK)
    docs = json.loads(admin.get(RUNS).text)["runs"]
    assert everything.status_code == 200 and len(docs) == 5
    # the reference meaning reads the exact values (NaN as a float): msgpack
    exact = msgpack.unpackb(everything.content, raw=False)["runs"]
    for spec in FILTERS:
        text = json.dumps(spec)
        want = sorted(d["id"] for d in exact if parse(text)(d))
        answer = admin.get(RUNS, params={"filters": text}).json()
        assert sorted(r["id"] for r in answer["runs"]) == want, spec
        assert answer["total"] == len(want)


def test_order_limit_offset_and_total(admin: httpx.Client) -> None:
    _make(admin)

    def ids(**params: Any) -> tuple[list[str], int]:
        answer = admin.get(RUNS, params=params).json()
        return [r["id"] for r in answer["runs"]], answer["total"]

    assert ids() == (["r0", "r1", "r2", "r3", "r4"], 5)  # oldest first, as before
    assert ids(order="-created_at") == (["r4", "r3", "r2", "r1", "r0"], 5)
    # numbers by value; runs without the field last, whichever the direction
    assert ids(order="summary.loss", filters='{"summary.loss": {"$gt": 0}}') == (
        ["r1", "r0", "r3"],
        3,
    )
    assert ids(order="-summary.loss", filters='{"summary.loss": {"$gt": 0}}') == (
        ["r3", "r0", "r1"],
        3,
    )
    names, _ = ids(order="-config.opt.name")
    assert names[:2] == ["r1", "r0"] and names[-1] == "r4"
    assert ids(order="name", limit=2) == (["r0", "r1"], 5)
    assert ids(order="name", limit=2, offset=2) == (["r2", "r3"], 5)
    assert ids(order="name", limit=2, offset=4) == (["r4"], 5)
    assert ids(order="-name", offset=3) == (["r1", "r0"], 5)
    for bad in ({"order": "tags"}, {"order": "bogus"}, {"limit": 0}, {"offset": -1}):
        response = admin.get(RUNS, params=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["message"]


def test_search_finds_runs_by_name_or_id_with_the_filters_order_and_pages(
    admin: httpx.Client,
) -> None:
    names = {
        "a1": "ResNet-50 base",
        "a2": "resnet_small",
        "a3": "vit 100%",
        "a4": None,
        "a5": "resnetXsmall",
    }
    for i, (run_id, name) in enumerate(names.items()):
        ingest(admin, run_id, [run_start(run_id, config={"lr": i}, name=name)]).raise_for_status()

    def ids(search: str, **params: Any) -> tuple[list[str], int]:
        answer = admin.get(RUNS, params={"search": search, "order": "name", **params})
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["runs"]], answer.json()["total"]

    assert ids("RESNET") == (["a1", "a5", "a2"], 3)  # case ignored
    assert ids("resnet_") == (["a2"], 1)  # "_" is itself, not any character
    assert ids("100%") == (["a3"], 1) and ids("0%") == (["a3"], 1)
    assert ids("%") == (["a3"], 1)
    assert ids("a4") == (["a4"], 1)  # by id: a run without a name
    assert ids("resnet", limit=1, offset=1) == (["a5"], 3)  # paged, the total of all matches
    assert ids("resnet", filters='{"config.lr": {"$gte": 1}}') == (["a5", "a2"], 2)
    assert ids("nothing like it") == ([], 0)
    too_long = admin.get(RUNS, params={"search": "x" * 257})
    assert too_long.status_code == 400 and "at most 256" in too_long.json()["error"]["message"]


def _insert_runs(server: ServerProcess, n: int) -> None:
    """``n`` runs written straight into the server's database, as ingest leaves them (the
    runs list is what is measured; 10,000 ingest requests would take minutes here)."""
    engine = unpooled_engine(database_url(server.db, server.data_dir))
    rows = []
    for i in range(n):
        config = {"lr": 10.0 ** -(i % 5), "arch": ["cnn", "mlp"][i % 2], "seed": i}
        summary = {"loss": (i * 7919 % 10_000) / 10_000, "acc": i % 100}
        rows.append(
            {
                "run_id": f"k{i}",
                "c": msgpack.packb(config),
                "s": msgpack.packb(summary),
                "cj": to_json_text(config),
                "sj": to_json_text(summary),
                "t": 1000.0 + i,
            }
        )
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO runs (project_id, run_id, name, tags, state, config, summary, "
                    "summary_state, created_at, heartbeat_at, last_seq, config_json, "
                    "summary_json) SELECT p.id, :run_id, :run_id, '[]', 'finished', :c, :s, "
                    "'', :t, :t, 1, :cj, :sj FROM projects p WHERE p.name = 'proj'"
                ),
                rows,
            )
    finally:
        engine.dispose()


@pytest.mark.timeout(300)
def test_ten_thousand_runs_first_page_filtered_and_sorted(
    server: ServerProcess, admin: httpx.Client
) -> None:
    ingest(admin, "first", [run_start("first")]).raise_for_status()
    _insert_runs(server, 10_000)
    params = {
        "filters": json.dumps({"config.arch": "cnn", "config.lr": {"$gte": 0.001}}),
        "order": "-summary.loss",
        "limit": 50,
    }
    admin.get(RUNS, params=params).raise_for_status()  # warm
    times = []
    for _ in range(7):
        began = time.perf_counter()
        answer = admin.get(RUNS, params=params).json()
        times.append(time.perf_counter() - began)
    losses = [r["summary"]["loss"] for r in answer["runs"]]
    assert len(losses) == 50 and losses == sorted(losses, reverse=True)
    assert answer["total"] == 4000
    assert all(r["config"]["arch"] == "cnn" and r["config"]["lr"] >= 0.001 for r in answer["runs"])
    # timings belong in benchmarks, not in assertions: print the median for the log
    print(f"10,000 runs, first page filtered and sorted: {sorted(times)[3] * 1000:.1f} ms median")
