"""One bad record never holds the others hostage: the server refuses it and applies the rest.

Every test runs through the real server on SQLite and on PostgreSQL. A batch of ten records
(RunStart at seq 1, History at seqs 2-10 with step ``seq - 2``) gets one poison record at
seq 5; the answer is 422 ``invalid_records`` naming seq 5, the nine others read back through
the read API, and a retry of the same batch is a 200 that changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import msgpack
import pytest
from trackd._wire import records as p

from tests._support.server import ServerProcess
from tests.server._batches import (
    finish,
    get_msgpack,
    history,
    ingest,
    ingest_raw,
    nested_list,
    packed,
    raw_history,
    run_start,
    unpack,
)

RUN = "/runs/admin/proj/{}"
HIST = RUN + "/history"
INT64_OVER = 2**63

Poison = Callable[[str, int], bytes]
_SHA = "ab" * 32
_RAW_IMAGE = {"_type": "image", "pixels": b"\x00" * 12, "shape": [2, 2, 3], "mode": "RGB"}
_IMAGE_FILE = {"_type": "image-file", "sha256": _SHA, "size": 3, "format": "png"}


def _hist(data: dict[str, object], step: int = 3) -> Poison:
    return lambda run_id, seq: packed(history(run_id, seq, step, data))


def _record(fields: Callable[[str, int], list[object]]) -> Poison:
    return lambda run_id, seq: msgpack.packb(fields(run_id, seq), use_bin_type=True)


POISONS: dict[str, tuple[Poison, tuple[str, ...]]] = {
    "step_over_int64": (
        _record(lambda r, s: [p.HISTORY, r, s, INT64_OVER, 1000.0, {"a": 1.0}]),
        ("History step 9223372036854775808 is outside int64", "-2**63 to 2**63-1"),
    ),
    "time_nan": (
        _record(lambda r, s: [p.HISTORY, r, s, 3, math.nan, {"a": 1.0}]),
        ("History time nan", "finite"),
    ),
    "time_int_over_int64": (
        _record(lambda r, s: [p.HISTORY, r, s, 3, INT64_OVER, {"a": 1.0}]),
        ("History time 9223372036854775808", "finite"),
    ),
    "value_nested_1000_deep": (
        lambda r, s: raw_history(r, s, 3, "deep", nested_list(1000)),
        ("History", "'deep'", "nested more than 32"),
    ),
    "nul_in_value": (_hist({"s": "a\x00b"}), ("History", "'s'", "NUL")),
    "nul_in_key": (_hist({"a\x00b": 1.0}), ("History key", "NUL")),
    "bytes_value": (_hist({"b": b"\x01\x02"}), ("History", "'b'", "bytes")),
    "ext_value": (_hist({"e": msgpack.ExtType(5, b"x")}), ("History", "'e'", "ext type 5")),
    "uint64_nested_in_config": (
        _record(lambda r, s: [p.CONFIG, r, s, {"n": [2**64 - 1]}]),
        ("Config", "'n'", "18446744073709551615", "int64"),
    ),
    "config_bytes_key": (
        _record(lambda r, s: [p.CONFIG, r, s, {b"k": 1}]),
        ("Config key b'k'", "str"),
    ),
    "config_timestamp_value": (
        _record(lambda r, s: [p.CONFIG, r, s, {"t": msgpack.Timestamp(1, 0)}]),
        ("Config", "'t'", "Timestamp"),
    ),
    "summary_nul_key": (
        _record(lambda r, s: [p.SUMMARY, r, s, {"x\x00": 1}]),
        ("Summary key", "NUL"),
    ),
    "run_start_nul_name": (
        lambda r, s: packed(run_start(r, seq=s, name="a\x00b")),
        ("RunStart name", "NUL"),
    ),
    "finish_exit_code_over_int64": (
        lambda r, s: packed(finish(r, s, state="failed", exit_code=INT64_OVER)),
        ("Finish exit_code 9223372036854775808", "int64"),
    ),
    "run_update_unknown_key": (
        _record(lambda r, s: [p.RUN_UPDATE, r, s, {"colour": "red"}]),
        ("RunUpdate key 'colour' is not one of name, notes, tags, group, job_type",),
    ),
    "run_update_nul_notes": (
        _record(lambda r, s: [p.RUN_UPDATE, r, s, {"notes": "a\x00"}]),
        ("RunUpdate notes", "NUL"),
    ),
    "unknown_kind": (
        _record(lambda r, s: [99, r, s, "from a newer client"]),
        ("unknown record kind 99",),
    ),
    "control_kind": (
        lambda r, s: packed(p.Flush(p.FLUSH, r, s)),
        ("Flush", "never stored"),
    ),
    "short_history": (_record(lambda r, s: [p.HISTORY, r, s]), ("History needs 6 fields",)),
    "history_media_raw_row": (
        _record(lambda r, s: [p.HISTORY_MEDIA, r, s, 3, 1000.0, {"img": _RAW_IMAGE}]),
        ("HistoryMedia (kind 8) holds raw media", "never stores raw media"),
    ),
    "raw_image_in_a_history_row": (
        _hist({"img": _RAW_IMAGE}),
        ("History value for key 'img' is a raw image", "image-file"),
    ),
    "raw_image_in_a_table_cell": (
        _hist({"t": {"_type": "table", "columns": ["a"], "data": [[_RAW_IMAGE]]}}),
        ("History value for key 't' is a raw image",),
    ),
    "image_file_without_sha256": (
        _hist({"img": {"_type": "image-file", "sha256": "abc", "size": 3, "format": "png"}}),
        ("'img'", "sha256 'abc' is not a SHA-256"),
    ),
    "image_file_mask_bad_size": (
        _hist({"img": dict(_IMAGE_FILE, masks={"m": {"sha256": _SHA, "size": -1}})}),
        ("'img'", "mask 'm': size -1 is not a size"),
    ),
    "file_name_escapes": (
        lambda r, s: packed(p.File(p.FILE, r, s, "../etc/passwd", "/x", "now", _SHA, 3)),
        ("File name '../etc/passwd' is not allowed",),
    ),
    "file_bad_policy": (
        lambda r, s: packed(p.File(p.FILE, r, s, "a.txt", "/x", "sometimes", _SHA, 3)),
        ("File 'a.txt': policy 'sometimes' is not one of live, now, end",),
    ),
    "file_without_hash": (
        lambda r, s: packed(p.File(p.FILE, r, s, "a.txt", "/x", "now")),
        ("File 'a.txt': sha256 None is not a SHA-256",),
    ),
}


def _batch(run_id: str, poison: Poison, at: int = 5) -> list[bytes]:
    records = [packed(run_start(run_id))]
    for seq in range(2, 11):
        if seq == at:
            records.append(poison(run_id, seq))
        else:
            records.append(packed(history(run_id, seq, seq - 2, {"loss": float(seq)})))
    return records


def _refused(response: httpx.Response, durable: int, seq: int, *fragments: str) -> str:
    assert response.status_code == 422, response.text
    doc = response.json()
    assert doc["error"]["code"] == "invalid_records", doc
    assert doc["durable_seq"] == durable, doc
    ((rejected),) = doc["rejected"]
    assert rejected["seq"] == seq, doc
    reason: str = rejected["reason"]
    for fragment in fragments:
        assert fragment in reason, reason
    assert f"seq {seq}: {reason}" in doc["error"]["message"]
    return reason


@pytest.mark.parametrize("name", sorted(POISONS))
def test_a_poison_record_is_refused_and_the_rest_applied(admin: httpx.Client, name: str) -> None:
    poison, fragments = POISONS[name]
    run_id = name.replace("_", "-")
    records = _batch(run_id, poison)
    reason = _refused(ingest_raw(admin, run_id, records), 10, 5, *fragments)
    rows = get_msgpack(admin, HIST.format(run_id))
    assert [(r["_step"], r["loss"]) for r in rows] == [
        (seq - 2, float(seq)) for seq in range(2, 11) if seq != 5
    ]
    run = admin.get(RUN.format(run_id)).json()
    assert (run["name"], run["last_seq"], run["last_step"]) == (f"name-{run_id}", 10, 8)
    assert [(r["seq"], r["reason"]) for r in run["rejected_records"]] == [(5, reason)]
    # the same batch again: nothing left to apply, nothing refused again
    retry = ingest_raw(admin, run_id, records)
    assert retry.status_code == 200, retry.text
    assert unpack(retry) == {"run_id": run_id, "durable_seq": 10}
    assert get_msgpack(admin, HIST.format(run_id)) == rows
    assert admin.get(RUN.format(run_id)).json()["rejected_records"] == run["rejected_records"]
    assert admin.get("/entities/admin/projects/proj/runs").status_code == 200


def test_a_refused_run_start_leaves_the_run_usable(admin: httpx.Client) -> None:
    records = [packed(run_start("t0", start_time=math.nan))]
    records += [packed(history("t0", seq, seq - 2, {"loss": 1.0})) for seq in range(2, 11)]
    _refused(ingest_raw(admin, "t0", records), 10, 1, "RunStart start_time nan", "finite")
    run = admin.get(RUN.format("t0")).json()
    assert run["last_seq"] == 10 and math.isfinite(run["created_at"])
    assert [r["_step"] for r in admin.get(HIST.format("t0")).json()] == list(range(9))


def test_large_exit_codes_are_kept(admin: httpx.Client) -> None:
    # Windows NTSTATUS exit codes pass 2**31 (0xC0000005 is an access violation)
    for run_id, code in (("w1", 0xC0000005), ("w2", -(2**63)), ("w3", 2**63 - 1)):
        response = ingest(admin, run_id, [run_start(run_id), finish(run_id, 2, "failed", code)])
        assert response.status_code == 200, response.text
        assert admin.get(RUN.format(run_id)).json()["exit_code"] == code


def test_several_refused_records_are_all_named(admin: httpx.Client) -> None:
    records = [
        packed(run_start("many")),
        packed(history("many", 2, 0, {"ok": 1.0})),
        packed(history("many", 3, 1, {"bad": b"x"})),
        packed(p.Config(p.CONFIG, "many", 4, {"lr": 0.1})),
        msgpack.packb([p.HISTORY, "many", 5, 2, math.inf, {"ok": 2.0}]),
        packed(history("many", 6, 3, {"ok": 3.0})),
    ]
    response = ingest_raw(admin, "many", records)
    assert response.status_code == 422, response.text
    doc = response.json()
    assert [r["seq"] for r in doc["rejected"]] == [3, 5] and doc["durable_seq"] == 6
    assert doc["error"]["message"].startswith("2 records refused: seq 3: History value")
    rows = admin.get(HIST.format("many")).json()
    assert [(r["_step"], r["ok"]) for r in rows] == [(0, 1.0), (3, 3.0)]
    assert admin.get(RUN.format("many")).json()["config"] == {"lr": 0.1}


def test_a_batch_of_only_refused_records_still_moves_last_seq(admin: httpx.Client) -> None:
    ingest(admin, "only", [run_start("only")]).raise_for_status()
    records = [packed(history("only", 2, 0, {"b": b"x"}))]
    _refused(ingest_raw(admin, "only", records), 2, 2, "bytes")
    assert unpack(ingest_raw(admin, "only", records))["durable_seq"] == 2


def test_a_seq_beyond_int64_refuses_the_whole_batch(admin: httpx.Client) -> None:
    records = [packed(run_start("bigseq")), packed(history("bigseq", INT64_OVER, 0, {"a": 1.0}))]
    response = ingest_raw(admin, "bigseq", records)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_record"
    assert "seq 9223372036854775808" in response.json()["error"]["message"]
    assert admin.get(RUN.format("bigseq")).status_code == 404


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"min_step": str(INT64_OVER)}, "min_step"),
        ({"max_step": str(-(2**63) - 1)}, "max_step"),
        ({"samples": str(INT64_OVER)}, "samples"),
        ({"samples": "1000001"}, "samples"),
        ({"keys": "a\x00b"}, "NUL"),
        ({"keys": "k" * 513}, "512"),
        ({"keys": ",".join(f"k{i}" for i in range(1001))}, "1000 keys"),
    ],
)
def test_history_query_parameters_are_checked(
    admin: httpx.Client, params: dict[str, str], fragment: str
) -> None:
    ingest(admin, "q", [run_start("q"), history("q", 2, 0, {"a": 1.0})]).raise_for_status()
    response = admin.get(HIST.format("q"), params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_read_paths_and_filters_are_checked(admin: httpx.Client) -> None:
    ingest(admin, "q", [run_start("q")]).raise_for_status()
    for url in (
        RUN.format("a%00b"),
        HIST.format("a%00b"),
        "/runs/admin/pr%00j/q",
        "/runs/a%00/p/q",
    ):
        response = admin.get(url)
        assert response.status_code == 400, (url, response.text)
    deep = '{"$and":[' * 200 + "{}" + "]}" * 200
    for spec in ("[" * 5000, deep):
        response = admin.get("/entities/admin/projects/proj/runs", params={"filters": spec})
        assert response.status_code == 400, response.text


def test_old_rows_with_unrenderable_values_still_render(
    server: ServerProcess, admin: httpx.Client
) -> None:
    """Rows stored before this change may hold bytes keys, ext values and deep nesting."""
    from sqlalchemy import text
    from trackd.server._db import database_url, unpooled_engine

    ingest(admin, "old", [run_start("old"), history("old", 2, 0, {"a": 1.0})]).raise_for_status()
    deep: object = math.nan
    for _ in range(500):
        deep = {"d": deep}
    config = {b"k": 1, "t": msgpack.Timestamp(1, 5), "e": msgpack.ExtType(7, b"\x01"), "n": deep}
    blob = msgpack.packb(config, use_bin_type=True)
    engine = unpooled_engine(database_url(server.db, server.data_dir))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE runs SET config = :c, summary = :c"), {"c": blob})
    finally:
        engine.dispose()
    for accept in ("application/json", "application/msgpack"):
        headers = {"Accept": accept}
        assert admin.get(RUN.format("old"), headers=headers).status_code == 200
        listing = admin.get("/entities/admin/projects/proj/runs", headers=headers)
        assert listing.status_code == 200, listing.text
    run = admin.get(RUN.format("old")).json()
    assert run["config"]["6b"] == 1 and run["summary"]["6b"] == 1
    assert run["config"]["t"] == "<msgpack Timestamp 1.000000005>"
    assert run["config"]["e"] == "<msgpack ext type 7: 01>"
    level = run["config"]["n"]
    while isinstance(level, dict):
        level = level["d"]
    assert level == "<nested too deep>"
