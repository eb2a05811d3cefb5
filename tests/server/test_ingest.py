"""Ingest through the real server: exactly-once, exact values, limits and run state."""

from __future__ import annotations

import math

import httpx
import msgpack
from trackd._wire import records as p

from tests.server._batches import (
    MSGPACK,
    body,
    finish,
    get_msgpack,
    history,
    ingest,
    run_start,
    unpack,
)

HIST = "/runs/admin/proj/{}/history"


def _rows(run_id: str, first_seq: int, steps: range) -> list[p.History]:
    return [
        history(run_id, first_seq + i, step, {"loss": float(step), "acc": step * 2})
        for i, step in enumerate(steps)
    ]


def test_same_batch_twice_applies_once(admin: httpx.Client) -> None:
    records = [run_start("once"), *_rows("once", 2, range(100))]
    first = ingest(admin, "once", records)
    assert first.status_code == 200, first.text
    assert unpack(first) == {"run_id": "once", "durable_seq": 101}
    second = ingest(admin, "once", records)
    assert unpack(second) == {"run_id": "once", "durable_seq": 101}
    rows = get_msgpack(admin, HIST.format("once"))
    assert [r["_step"] for r in rows] == list(range(100))
    assert all(r["loss"] == float(r["_step"]) and r["acc"] == 2 * r["_step"] for r in rows)


def test_overlapping_batches_apply_each_seq_once(admin: httpx.Client) -> None:
    records = [run_start("lap"), *_rows("lap", 2, range(50))]
    assert unpack(ingest(admin, "lap", records[:30]))["durable_seq"] == 30
    # a retry that overlaps what was applied, with a later Config that must apply once
    cfg = p.Config(p.CONFIG, "lap", 60, {"lr": 0.1})
    later = records[20:] + [cfg]
    assert unpack(ingest(admin, "lap", later))["durable_seq"] == 60
    assert unpack(ingest(admin, "lap", later))["durable_seq"] == 60
    run = get_msgpack(admin, "/runs/admin/proj/lap")
    assert run["last_seq"] == 60 and run["last_step"] == 49 and run["config"] == {"lr": 0.1}
    steps = [r["_step"] for r in get_msgpack(admin, HIST.format("lap"))]
    assert steps == list(range(50))


VALUES = {
    "nan": math.nan,
    "inf": math.inf,
    "ninf": -math.inf,
    "i64max": 2**63 - 1,
    "i64min": -(2**63),
    "u64max": 2**64 - 1,
    "t": True,
    "f": False,
    "zero": 0.0,
    "tiny": 5e-324,
    "s": "héllo ✓",
    "none": None,
    "media": {"_type": "object3d", "path": "a.obj", "size": [3, 4]},  # a raw "image" is refused
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def test_values_round_trip_exactly(admin: httpx.Client) -> None:
    ingest(admin, "vals", [run_start("vals"), history("vals", 2, 7, VALUES)]).raise_for_status()
    (row,) = get_msgpack(admin, HIST.format("vals"))
    assert row.pop("_step") == 7 and row.pop("_timestamp") == 1007.0
    assert row.keys() == VALUES.keys()
    for key, value in VALUES.items():
        assert _same(row[key], value), (key, row[key], value)
    (as_json,) = admin.get(HIST.format("vals")).json()
    assert (as_json["nan"], as_json["inf"], as_json["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert as_json["i64max"] == 2**63 - 1 and as_json["t"] is True and as_json["none"] is None
    sampled = get_msgpack(admin, HIST.format("vals"), samples=10)["keys"]
    assert math.isnan(sampled["nan"]["value"][0]) and sampled["u64max"]["value"] == [2**64 - 1]
    summary = get_msgpack(admin, "/runs/admin/proj/vals")["summary"]
    assert math.isnan(summary["nan"]) and summary["i64min"] == -(2**63)


def test_history_key_and_step_filters(admin: httpx.Client) -> None:
    ingest(admin, "sel", [run_start("sel"), *_rows("sel", 2, range(10))]).raise_for_status()
    rows = get_msgpack(admin, HIST.format("sel"), keys="loss", min_step=3, max_step=5)
    assert rows == [{"_step": s, "_timestamp": 1000.0 + s, "loss": float(s)} for s in (3, 4, 5)]


def test_summary_finish_and_resume(admin: httpx.Client) -> None:
    metric = p.Metric(p.METRIC, "sm", 2, "loss", None, "min,max", "minimize")
    rows = [history("sm", 3 + i, i, {"loss": v}) for i, v in enumerate([3.0, 1.0, 2.0])]
    explicit = p.Summary(p.SUMMARY, "sm", 6, {"best_epoch": 1})
    records = [run_start("sm", config={"a": 1}), metric, *rows, explicit, finish("sm", 7)]
    ingest(admin, "sm", records).raise_for_status()
    run = admin.get("/runs/admin/proj/sm").json()
    assert run["summary"] == {"loss": {"min": 1.0, "max": 3.0}, "best_epoch": 1}
    assert (run["state"], run["exit_code"], run["config"]) == ("finished", 0, {"a": 1})
    init = admin.post("/init", json={"entity": None, "project": "proj", "run_id": "sm"}).json()
    assert init["entity"] == "admin" and init["run"]["last_step"] == 2
    resume = [
        run_start("sm", seq=8, resumed=True, config={"b": 2}),
        history("sm", 9, 3, {"loss": 0.5}),
    ]
    ingest(admin, "sm", resume).raise_for_status()
    run = admin.get("/runs/admin/proj/sm").json()
    assert run["state"] == "running" and run["finished_at"] is None
    assert run["config"] == {"a": 1, "b": 2}
    assert run["summary"]["loss"] == {"min": 0.5, "max": 3.0}
    assert len(admin.get(HIST.format("sm")).json()) == 4
    assert admin.post("/init", json={"project": "proj", "run_id": "new"}).json()["run"] is None


def _error(response: httpx.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_broken_batches_are_refused_whole(admin: httpx.Client) -> None:
    post = admin.post
    _error(post("/ingest", content=b"\xc1junk", headers=MSGPACK), 422, "not valid msgpack")
    _error(post("/ingest", content=msgpack.packb([1, 2]), headers=MSGPACK), 422, "records")
    order = [run_start("bad", seq=5), history("bad", 4, 0, {"a": 1})]
    _error(ingest(admin, "bad", order), 422, "seq 4 after seq 5")
    short = [run_start("bad"), [p.HISTORY, "bad"]]
    _error(ingest(admin, "bad", short), 422, "record #1 is malformed")
    wrong_run = [run_start("bad"), history("other", 2, 0, {"a": 1})]
    _error(ingest(admin, "bad", wrong_run), 422, "'other'")
    zero = [p.Config(p.CONFIG, "bad", 0, {})]
    _error(ingest(admin, "bad", zero), 422, "seq 0 after seq 0")
    # nothing of the refused batches was applied
    assert admin.get("/runs/admin/proj/bad").status_code == 404


def test_bad_records_are_refused_one_by_one(admin: httpx.Client) -> None:
    cases = {
        "key": (history("key", 2, 0, {"k" * 513: 1.0}), ("513 characters", "at most 512")),
        "big": (history("big", 2, 0, {"text": "x" * (1 << 20 + 1)}), ("'text'", "1 MiB")),
        "json": (history("json", 2, 0, {"l": ["x" * 600_000] * 2}), ("'l'", "as JSON", "1 MiB")),
        "kind": ([99, "kind", 2, "?"], ("unknown record kind 99",)),
        "flush": (p.Flush(p.FLUSH, "flush", 2), ("Flush", "never stored")),
        "short": ([p.HISTORY, "short", 2], ("History needs 6 fields, got 3",)),
        "state": (finish("state", 2, state="exploded"), ("exploded",)),
    }
    for run_id, (record, fragments) in cases.items():
        response = ingest(admin, run_id, [run_start(run_id), record])
        message = _error(response, 422, "1 record refused: seq 2: ", *fragments)
        assert response.json()["durable_seq"] == 2, message
        run = admin.get(f"/runs/admin/proj/{run_id}").json()
        assert (run["name"], run["last_seq"], run["rejected_count"]) == (f"name-{run_id}", 2, 1)


def test_body_over_limit_is_413(admin: httpx.Client) -> None:
    payload = [
        run_start("huge"),
        history("huge", 2, 0, {f"k{i}": "x" * 900_000 for i in range(40)}),
    ]
    response = admin.post("/ingest", content=body("huge", payload), headers=MSGPACK)
    _error(response, 413, "the limit is 32 MiB", "smaller batches")


def test_crashed_run_comes_back_on_ingest(admin: httpx.Client) -> None:
    ingest(admin, "cr", [run_start("cr")]).raise_for_status()
    ingest(admin, "cr", [finish("cr", 2, state="crashed", exit_code=-9)]).raise_for_status()
    assert admin.get("/runs/admin/proj/cr").json()["state"] == "crashed"
    ingest(admin, "cr", [history("cr", 3, 0, {"a": 1})]).raise_for_status()
    assert admin.get("/runs/admin/proj/cr").json()["state"] == "running"


def test_a_step_logged_twice_keeps_the_last_value(admin: httpx.Client) -> None:
    records = [run_start("dup"), history("dup", 2, 0, {"a": 1.0}), history("dup", 3, 0, {"a": 2.0})]
    ingest(admin, "dup", records).raise_for_status()
    ingest(admin, "dup", [history("dup", 4, 0, {"a": 3.0, "b": "x"})]).raise_for_status()
    assert admin.get(HIST.format("dup")).json() == [
        {"_step": 0, "_timestamp": 1000.0, "a": 3.0, "b": "x"}
    ]


def test_run_id_rule_is_the_clients(admin: httpx.Client) -> None:
    for bad in (".", "..", "a.b", "x" * 65, "a\n"):
        answer = ingest(admin, bad, [run_start(bad)])
        assert answer.status_code == 422, (bad, answer.text)
        assert "use 1-64 letters, digits, '-' or '_'" in answer.json()["error"]["message"]
    good = "A_b-" + "x" * 60
    assert unpack(ingest(admin, good, [run_start(good)]))["durable_seq"] == 1
