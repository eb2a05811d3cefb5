"""Property test of ``/ingest`` on the real server: valid records mixed with arbitrary junk.

Whatever a batch holds (wrong types, ints past int64, NaN, deep nesting, bytes, msgpack ext
values, NUL characters, long or non-str keys, unknown kinds), as long as its envelope is
sound (arrays of int kind, this run's id, increasing seqs), the server never answers 5xx;
every valid record reads back exactly once; every refused record is named in ``rejected``
and was one of the junk ones; and a retry of the batch changes nothing.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import httpx
import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from trackd._wire import records as p

from tests.server._batches import MSGPACK, get_msgpack, packed, raw_body, run_start, unpack

INT64 = st.integers(-(2**63), 2**63 - 1)
# msgpack cannot encode lone surrogates, so no wire carries them
CHARS = st.characters(blacklist_categories=("Cs",))
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
SCALARS = st.none() | st.booleans() | INT64 | st.floats() | TEXT
VALID = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _nest(depth: int) -> Any:
    value: Any = 1.0
    for _ in range(depth):
        value = [value]
    return value


JUNK_KEYS = (
    TEXT.map(lambda t: "j" + t)
    | st.text(CHARS, min_size=1, max_size=4).map(lambda t: "j\x00" + t)
    | st.just("j" * 513)
    | st.integers(-5, 5)
    | st.binary(max_size=3)
)
JUNK_SCALARS = (
    st.binary(max_size=4)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32), st.integers(0, 999_999_999))
    | st.text(CHARS, max_size=4).map(lambda t: t + "\x00")
    | st.integers(2**63, 2**64 - 1)
    | st.integers(34, 40).map(_nest)
    | st.sampled_from([math.nan, math.inf, -math.inf])
    | SCALARS
)
JUNK = st.recursive(
    JUNK_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JUNK_KEYS, inner, max_size=3),
    max_leaves=6,
)
JUNK_FIELDS = st.lists(JUNK, max_size=7)
JUNK_KINDS = st.sampled_from([*sorted(p.STORED_KINDS), p.FLUSH, 99])

# one item of a batch: ("valid", kind, value) or ("junk", kind, fields)
ITEMS = st.one_of(
    st.tuples(st.just("valid"), st.sampled_from(["history", "config", "summary"]), VALID),
    st.tuples(st.just("junk"), JUNK_KINDS, JUNK_FIELDS),
)

_RUN_IDS = itertools.count()


def _record(run_id: str, seq: int, item: tuple[str, Any, Any]) -> bytes:
    what, kind, value = item
    if what == "junk":
        return msgpack.packb([kind, run_id, seq, *value], use_bin_type=True)
    if kind == "history":
        data = {"ok": float(seq), "v": value}
        return packed(p.History(p.HISTORY, run_id, seq, seq, 1000.0 + seq, data))
    if kind == "config":
        return packed(p.Config(p.CONFIG, run_id, seq, {f"c{seq}": value}))
    # a summary value of None removes the key; keep it readable
    return packed(p.Summary(p.SUMMARY, run_id, seq, {f"s{seq}": [value]}))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _post(client: httpx.Client, run_id: str, records: list[bytes]) -> httpx.Response:
    return client.post("/ingest", content=raw_body(run_id, records), headers=MSGPACK)


def _check_answer(response: httpx.Response, last_seq: int, junk: set[int]) -> list[int]:
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert unpack(response)["durable_seq"] == last_seq
        return []
    doc = response.json()
    assert doc["error"]["code"] == "invalid_records" and doc["durable_seq"] == last_seq, doc
    refused = [r["seq"] for r in doc["rejected"]]
    assert refused == sorted(set(refused)) and set(refused) <= junk, (refused, junk)
    assert all(isinstance(r["reason"], str) and r["reason"] for r in doc["rejected"])
    return refused


def _check_readback(client: httpx.Client, run_id: str, valid: dict[int, Any]) -> None:
    url = f"/runs/admin/proj/{run_id}"
    rows = get_msgpack(client, url + "/history", keys="ok,v")
    history = {s: v for s, (kind, v) in valid.items() if kind == "history"}
    assert [r["_step"] for r in rows] == sorted(history)  # each exactly once
    for row in rows:
        assert row["ok"] == float(row["_step"]) and _same(row["v"], history[row["_step"]])
    run = get_msgpack(client, url)
    for seq, (kind, value) in valid.items():
        if kind == "config":
            assert _same(run["config"][f"c{seq}"], value), seq
        elif kind == "summary":
            assert _same(run["summary"][f"s{seq}"], [value]), seq
    for path in (url, url + "/history", "/entities/admin/projects/proj/runs"):
        assert client.get(path).status_code == 200, path  # JSON rendering is total


@pytest.mark.timeout(240)
def test_junk_never_holds_valid_records_hostage(admin: httpx.Client) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(ITEMS, min_size=1, max_size=12))
    def check(items: list[tuple[str, Any, Any]]) -> None:
        run_id = f"prop-{next(_RUN_IDS)}"
        records = [packed(run_start(run_id))]
        records += [_record(run_id, seq, item) for seq, item in enumerate(items, start=2)]
        junk = {seq for seq, item in enumerate(items, start=2) if item[0] == "junk"}
        valid = {s: (i[1], i[2]) for s, i in enumerate(items, start=2) if i[0] == "valid"}
        last_seq = len(items) + 1
        refused = _check_answer(_post(admin, run_id, records), last_seq, junk)
        event(f"{len(refused)} of {len(junk)} junk records refused")
        _check_readback(admin, run_id, valid)
        assert get_msgpack(admin, f"/runs/admin/proj/{run_id}")["rejected_count"] == len(refused)
        assert unpack(_post(admin, run_id, records)) == {"run_id": run_id, "durable_seq": last_seq}

    check()
