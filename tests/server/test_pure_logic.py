"""In-process tests of the server's pure logic: downsampling, filters, value encoding."""

from __future__ import annotations

import math

import pytest
from trackd.server._downsample import select_points
from trackd.server._filters import compile_filter, parse
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
    with pytest.raises(InvalidRecord, match="'k'.*64 bits"):
        encode_value("k", 2**64)
    with pytest.raises(InvalidRecord, match="'k' is a bytes"):
        encode_value("k", b"x")
    assert (
        to_json({"a": [math.nan, math.inf, -math.inf, 1]})
        == b'{"a":["NaN","Infinity","-Infinity",1]}'
    )
