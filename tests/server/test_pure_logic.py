"""In-process tests of the server's pure logic: downsampling, filters, value encoding."""

from __future__ import annotations

import math

import msgpack
import pytest
from trackd._wire import records as p
from trackd.server._downsample import select_points
from trackd.server._filters import compile_filter, parse
from trackd.server._record_rules import MAX_DEPTH, record_problem, value_problem
from trackd.server._values import decode_value, encode_value, to_json
from trackd.server.errors import BadRequest, InvalidRecord


def test_small_series_are_returned_whole() -> None:
    assert select_points([0, 1, 2], [1, 2, 3], 10) == [0, 1, 2]


def test_each_bucket_keeps_its_min_and_max() -> None:
    steps = list(range(1000))
    values = [math.sin(s / 10) for s in steps]
    values[500], values[501] = 50.0, -50.0
    keep = select_points(steps, values, 20)
    assert 500 in keep and 501 in keep and len(keep) <= 20
    assert keep == sorted(set(keep))


def test_non_numbers_survive_downsampling() -> None:
    values: list[object] = [1.0] * 100
    values[42] = math.nan
    keep = select_points(list(range(100)), values, 10)
    assert 42 in keep


def test_sparse_steps() -> None:
    steps = [0, 1, 2, 1_000_000]
    assert select_points(steps, [1.0, 5.0, 2.0, 3.0], 2) == [0, 1]


RUN = {"state": "finished", "tags": ["a", "b"], "config": {"lr": 0.1, "n": {"x": 1}}, "summary": {}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"state": "finished"}, True),
        ({"state": {"$ne": "finished"}}, False),
        ({"tags": "a"}, True),
        ({"tags": {"$in": ["z", "b"]}}, True),
        ({"tags": {"$nin": ["b"]}}, False),
        ({"config.lr": {"$gt": 0.05, "$lte": 0.1}}, True),
        ({"config.lr": {"$gt": "a"}}, False),
        ({"config.n.x": 1}, True),
        ({"config.missing": {"$exists": False}}, True),
        ({"summary.loss": {"$lt": 1}}, False),
        ({"$or": [{"state": "failed"}, {"config.lr": 0.1}]}, True),
        ({"$and": [{"state": "finished"}, {"tags": "z"}]}, False),
    ],
)
def test_filters(spec: dict[str, object], expected: bool) -> None:
    assert compile_filter(spec)(RUN) is expected


def test_filter_errors() -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        parse("{")
    with pytest.raises(BadRequest, match="'\\$regex'"):
        parse('{"name": {"$regex": "x"}}')
    assert parse(None)(RUN)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        1.5,
        math.inf,
        -math.inf,
        True,
        False,
        None,
        "s",
        [1, {"a": 2}],
    ],
)
def test_values_round_trip(value: object) -> None:
    decoded = decode_value(*encode_value("k", value))
    assert type(decoded) is type(value) and decoded == value


def test_nan_and_errors() -> None:
    assert math.isnan(decode_value(*encode_value("k", math.nan)))
    with pytest.raises(InvalidRecord, match="'k' is 1048580 bytes as JSON"):
        encode_value("k", ["x" * (1 << 20)])
    assert (
        to_json({"a": [math.nan, math.inf, -math.inf, 1]})
        == b'{"a":["NaN","Infinity","-Infinity",1]}'
    )


def _nested(depth: int) -> object:
    value: object = 1.0
    for _ in range(depth):
        value = [value]
    return value


def test_record_rules_values() -> None:
    assert value_problem(_nested(MAX_DEPTH)) is None
    assert "nested more than 32 deep" in (value_problem(_nested(MAX_DEPTH + 1)) or "")
    assert value_problem(2**64 - 1) is not None and value_problem(2**64 - 1, wide_ints=True) is None
    assert value_problem(2**64, wide_ints=True) == (
        "is the int 18446744073709551616, outside int64; ints are from -2**63 to 2**64-1"
    )
    assert value_problem([math.nan, -math.inf, None, True, "s", {"k": [1]}]) is None
    assert (
        value_problem({"a": {b"k": 1}}) == "holds a map whose key b'k' is bytes; keys must be str"
    )
    assert "NUL" in (value_problem(["a\x00"]) or "")
    assert "Timestamp" in (value_problem(msgpack.Timestamp(0)) or "")
    assert value_problem((1, 2)) == (
        "is tuple; values are None, bool, int, float, str, or lists and str-keyed maps of those"
    )


def test_record_rules_records() -> None:
    ok = p.History(p.HISTORY, "r", 1, 0, 1.0, {"a": 1.0})
    assert record_problem(ok) is None
    assert record_problem(ok._replace(step=True)) == (
        "History step True is bool; steps are ints from -2**63 to 2**63-1"
    )
    assert "History time inf" in (record_problem(ok._replace(time=math.inf)) or "")
    assert record_problem(ok._replace(data=[1])) == (
        "History data is list; it must be a map of str keys to values"
    )
    finish = p.Finish(p.FINISH, "r", 2, "failed", None, None)
    assert record_problem(finish) is None
    assert "exit_code 1.0 is float" in (record_problem(finish._replace(exit_code=1.0)) or "")
    metric = p.Metric(p.METRIC, "r", 3, "val/*", None, "min,avg", None)
    assert "summary mode 'avg'" in (record_problem(metric) or "")
    assert record_problem(p.Flush(p.FLUSH, "r", 4)) == "Flush (kind 21) is never stored"


def test_record_rules_take_unhashable_fields() -> None:
    # found by tests/server/test_ingest_properties.py: `[] in frozenset()` raises TypeError
    finish = p.Finish(p.FINISH, "r", 2, [], [], b"")
    assert (
        record_problem(finish) == "Finish state [] is not one of ['crashed', 'failed', 'finished']"
    )
    metric = p.Metric(p.METRIC, "r", 3, "loss", None, None, [])
    assert record_problem(metric) == "Metric 'loss': goal [] is not one of ['maximize', 'minimize']"
