"""Columnar History (ingest body version 2) through the real server, SQLite and PostgreSQL.

The same records posted as records (version 1) and as the daemon's columnar elements
(:func:`trackd._wire.columns.build`) must read back identically: history values of every
kind, the summary, the refused records and their reasons; and a retried or overlapping
columnar batch never writes a point twice."""

from __future__ import annotations

import math
from typing import Any

import httpx
import msgpack
import numpy as np
import pytest
from trackd._wire import columns
from trackd._wire import records as p
from trackd._wire.ingest import encode_body

from tests._support.server import running_server
from tests._support.values import same_value
from tests.server._batches import MSGPACK, get_msgpack, ingest_raw, packed, run_start

RUN = "/runs/admin/proj/{}"
BULK = "/entities/admin/projects/proj/history"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def admin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server per database for this module (each test uses its own runs)."""
    db = None if request.param == "sqlite" else request.getfixturevalue("pg_cluster").fresh_url()
    with running_server(tmp_path_factory.mktemp("columns") / "server", db=db) as server:
        with server.client() as client:
            yield client


def _rows(run_id: str, n: int, first_seq: int = 2) -> list[bytes]:
    """History records with every kind of plain value, keys coming and going, and a few
    records that are not plain (they must stay records, in their place)."""
    out = []
    for i in range(n):
        data: dict[str, Any] = {"loss": 1.0 / (i + 1), "i": i, "flag": i % 3 == 0}
        if i % 5 == 0:
            data["sometimes"] = None if i % 10 else float("nan")
        if i % 7 == 0:
            data["inf"] = float("inf") if i % 2 else float("-inf")
        if i == 40:
            data["text"] = "a string stays a record"
        if i == 41:
            data["big"] = 2**60  # beyond 2**53: stays a record, exact
        if i == 42:
            data["bad\x00key"] = 1.0  # refused by the server, with its seq
        if i == 43:
            data["i"] = -(2**53)
        t: Any = 1000.0 + i if i != 44 else float("nan")  # a refused time
        if i == 45:
            t = 2000  # an int time is fine
        step = i if i != 46 else 45  # a step logged again: the later point wins
        out.append(packed([p.HISTORY, run_id, first_seq + i, step, t, data]))
    return out


def _post(admin: httpx.Client, run_id: str, elements: list[bytes], version: int) -> httpx.Response:
    body = encode_body(None, "proj", run_id, elements, version)
    return admin.post("/ingest", content=body, headers=MSGPACK)


def _doc(response: httpx.Response) -> Any:
    """The answer, msgpack or JSON (error bodies are JSON)."""
    if response.headers["content-type"].startswith("application/msgpack"):
        return msgpack.unpackb(response.content, raw=False)
    return response.json()


def _history(admin: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    return get_msgpack(admin, f"{RUN.format(run_id)}/history")  # type: ignore[no-any-return]


def _metric(run_id: str, seq: int) -> bytes:
    return packed(p.Metric(p.METRIC, run_id, seq, "loss", None, "min,max,mean", "minimize"))


def test_columns_read_back_as_records_do(admin: httpx.Client) -> None:
    n = 300
    for run_id in ("as-records", "as-columns"):
        ingest_raw(
            admin, run_id, [packed(run_start(run_id)), _metric(run_id, 2)]
        ).raise_for_status()
    plain = _rows("as-records", n, first_seq=3)
    answer_v1 = _post(admin, "as-records", plain, 1)
    elements = columns.build(_rows("as-columns", n, first_seq=3))
    kinds = [type(msgpack.unpackb(e, raw=False, strict_map_key=False)) for e in elements]
    assert kinds.count(dict) >= 2 and kinds.count(list) >= 5  # split around the odd rows
    answer_v2 = _post(admin, "as-columns", elements, 2)
    assert answer_v1.status_code == answer_v2.status_code == 422  # the NUL key, the NaN time
    one, two = answer_v1.json(), answer_v2.json()
    assert one["durable_seq"] == two["durable_seq"] == n + 2
    assert [r["seq"] for r in one["rejected"]] == [r["seq"] for r in two["rejected"]] == [45, 47]
    assert [r["reason"] for r in one["rejected"]] == [r["reason"] for r in two["rejected"]]
    rows_v1, rows_v2 = _history(admin, "as-records"), _history(admin, "as-columns")
    assert len(rows_v2) == n - 3  # two refused rows, and step 45 logged twice
    assert same_value(rows_v1, rows_v2)
    by_step = {row["_step"]: row for row in rows_v2}
    assert by_step[41]["big"] == 2**60 and by_step[43]["i"] == -(2**53)
    assert by_step[45]["i"] == 46  # the later point at step 45
    run_v1 = get_msgpack(admin, RUN.format("as-records"))
    run_v2 = get_msgpack(admin, RUN.format("as-columns"))
    assert same_value(run_v1["summary"], run_v2["summary"])
    assert run_v2["summary"]["loss"]["min"] == 1.0 / n and run_v2["summary"]["flag"] is False
    assert run_v2["last_step"] == run_v1["last_step"] == n - 1


def test_rows_of_a_columnar_element_are_refused_by_the_record_rules(admin: httpx.Client) -> None:
    """An element built by another writer, holding a NaN time and a key no key may be: those
    rows are refused with the reasons their records get, the others apply."""
    keys = ["ok", "bad\x00key", "x" * 600]
    for run_id in ("rules-records", "rules-columns"):
        ingest_raw(admin, run_id, [packed(run_start(run_id))]).raise_for_status()
    records = []
    for i in range(20):
        t = float("nan") if i == 3 else 1000.0 + i
        data = {keys[0]: float(i)}
        if i in (5, 9):
            data[keys[1]] = 1.0
        if i == 12:
            data[keys[2]] = 2.0
        records.append((2 + i, i, t, data))
    as_records = [packed([p.HISTORY, "rules-records", *r]) for r in records]
    answer_v1 = _post(admin, "rules-records", as_records, 1)
    seq, step, time = zip(*[(r[0], r[1], r[2]) for r in records], strict=True)
    element = {
        "columns": 1,
        "n": 20,
        "seq": np.array(seq, "<i8").tobytes(),
        "step": np.array(step, "<i8").tobytes(),
        "time": np.array(time, "<f8").tobytes(),
        "keys": [
            [keys[0], None, np.arange(20, dtype="<f8").tobytes(), None],
            [keys[1], np.array([5, 9], "<u4").tobytes(), np.ones(2, "<f8").tobytes(), None],
            [keys[2], np.array([12], "<u4").tobytes(), np.full(1, 2.0, "<f8").tobytes(), None],
        ],
    }
    answer_v2 = _post(admin, "rules-columns", [msgpack.packb(element, use_bin_type=True)], 2)
    assert answer_v1.status_code == answer_v2.status_code == 422
    one, two = answer_v1.json(), answer_v2.json()
    assert one["rejected"] == two["rejected"]
    assert [r["seq"] for r in two["rejected"]] == [5, 7, 11, 14]
    assert one["durable_seq"] == two["durable_seq"] == 21
    rows = _history(admin, "rules-columns")
    assert same_value(rows, _history(admin, "rules-records"))
    assert [r["_step"] for r in rows] == [i for i in range(20) if i not in (3, 5, 9, 12)]


def test_a_retried_or_overlapping_columnar_batch_writes_each_point_once(
    admin: httpx.Client,
) -> None:
    run_id = "retried"
    ingest_raw(admin, run_id, [packed(run_start(run_id))]).raise_for_status()
    records = [
        packed([p.HISTORY, run_id, 2 + i, i, 1000.0 + i, {"y": float(i)}]) for i in range(400)
    ]
    first = _post(admin, run_id, columns.build(records[:250]), 2)
    assert first.status_code == 200 and _doc(first)["durable_seq"] == 251
    again = _post(admin, run_id, columns.build(records[:250]), 2)
    assert again.status_code == 200 and _doc(again)["durable_seq"] == 251
    overlap = _post(admin, run_id, columns.build(records[100:]), 2)  # rows 100..249 are old
    assert overlap.status_code == 200 and _doc(overlap)["durable_seq"] == 401
    got = _history(admin, run_id)
    assert [r["_step"] for r in got] == list(range(400))
    assert [r["y"] for r in got] == [float(i) for i in range(400)]


def _element(**changes: Any) -> dict[str, Any]:
    doc = msgpack.unpackb(
        columns.build(
            [packed([p.HISTORY, "broken", 2 + i, i, 1.0, {"y": float(i)}]) for i in range(10)]
        )[0],
        raw=False,
    )
    doc.update(changes)
    return dict(doc)


BROKEN: list[dict[str, Any]] = [
    {"columns": 99},
    {"n": 11},
    {"seq": b"\x00" * 80},  # seqs not increasing
    {"time": b"short"},
    {"keys": [["y", None, b"\x00" * 8, None]]},  # too few values
    {"keys": [["y", b"\x05\x00\x00\x00\x01\x00\x00\x00", b"\x00" * 16, None]]},  # rows down
    {"keys": [["y", None, b"\x00" * 80, b"\x07" * 10]]},  # no such kind
    {"keys": [["y", None, b"\x00" * 80, None], ["y", None, b"\x00" * 80, None]]},
    {"keys": [["y", None, np.full(10, 0.5, "<f8").tobytes(), np.full(10, 1, "u1").tobytes()]]},
]


def test_a_malformed_columnar_element_refuses_the_batch(admin: httpx.Client) -> None:
    ingest_raw(admin, "broken", [packed(run_start("broken"))]).raise_for_status()
    assert _post(admin, "broken", [msgpack.packb(_element())], 2).status_code == 200
    ingest_raw(admin, "broken2", [packed(run_start("broken2"))]).raise_for_status()
    for changes in BROKEN:
        element = msgpack.packb(dict(_element(**changes)), use_bin_type=True)
        response = admin.post(
            "/ingest",
            content=encode_body(None, "proj", "broken2", [element], 2),
            headers=MSGPACK,
        )
        assert response.status_code == 422, (changes, response.text)
        assert "rejected" not in response.json()
    assert _history(admin, "broken2") == []
    assert get_msgpack(admin, RUN.format("broken2"))["last_seq"] == 1


def test_a_version_1_body_holds_no_columns(admin: httpx.Client) -> None:
    element = msgpack.packb(_element(), use_bin_type=True)
    response = _post(admin, "broken", [element], 1)
    assert response.status_code == 422 and "malformed" in response.text


def test_the_binary_bulk_answer_carries_every_kind_exactly(admin: httpx.Client) -> None:
    """The columns answer is built from the block arrays: floats (NaN and inf), ints within
    2**53 in the float64 array, everything else NaN there and exact in ``exact``."""
    run_id = "kinds"
    ingest_raw(admin, run_id, [packed(run_start(run_id))]).raise_for_status()
    values: list[Any] = [1.5, float("nan"), float("-inf"), 7, -(2**53), True, None, "s", 2**60]
    values += [{"a": [1, 2]}, 0.25] * 3
    records = [
        packed([p.HISTORY, run_id, 2 + i, i, 1000.0 + i, {"v": v}]) for i, v in enumerate(values)
    ]
    _post(admin, run_id, columns.build(records), 2).raise_for_status()
    body = {"runs": [run_id], "keys": ["v"], "samples": 1000}
    plain = _doc(admin.post(BULK, json=body, headers={"Accept": "application/msgpack"}))
    binary = admin.post(
        BULK, json=body, headers={"Accept": "application/vnd.trackd.columns+msgpack"}
    )
    [col] = msgpack.unpackb(binary.content, raw=False, strict_map_key=False)["series"]
    [series] = plain["series"]
    assert same_value(series["value"][:9], values[:9]) and series["value"][9] == {"a": [1, 2]}
    floats = np.frombuffer(col["value"], "<f8")
    assert np.frombuffer(col["step"], "<i8").tolist() == series["step"]
    assert np.frombuffer(col["time"], "<f8").tolist() == series["time"]
    for i, value in enumerate(series["value"]):
        if type(value) is float or (type(value) is int and abs(value) <= 2**53):
            assert same_value(float(floats[i]), float(value)) and i not in col["exact"]
        else:
            assert math.isnan(floats[i]) and same_value(col["exact"][i], value)
