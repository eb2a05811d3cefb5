"""The daemon's columnar History (:mod:`trackd._wire.columns`) as a pure function: every
record comes back from the body exactly, in seq order, whatever it holds."""

from __future__ import annotations

import math
import random
from typing import Any

import msgpack
from trackd._wire import columns
from trackd._wire import records as p

from tests._support.values import same_value


def _records(rng: random.Random, n: int) -> list[list[Any]]:
    odd: list[Any] = ["str", 2**60, -(2**63), [1, 2], {"a": 1}, b"raw"]
    out: list[list[Any]] = []
    for i in range(n):
        data: dict[str, Any] = {}
        for key in ("a", "b", "c", "d"):
            if rng.random() < 0.7:
                data[key] = rng.choice(
                    [rng.random(), rng.randint(-(2**53), 2**53), True, False, None, math.inf]
                )
        if rng.random() < 0.03:
            data[rng.choice(["a", "x\x00y", "k" * 600])] = rng.choice(odd)
        t: Any = 1000.0 + i if rng.random() > 0.02 else rng.choice([math.nan, 7, "t"])
        step = i if rng.random() > 0.02 else rng.choice([2**63, -5, i])
        if rng.random() < 0.02:
            out.append([p.CONFIG, "r", i + 1, {"lr": 0.1}])
        else:
            out.append([p.HISTORY, "r", i + 1, step, t, data])
    return out


def _back(element: dict[str, Any]) -> list[list[Any]]:
    """The records a columnar element stands for."""
    cols = columns.decode(element)
    rows: list[dict[str, Any]] = [{} for _ in range(len(cols))]
    for column in cols.keys:
        where = range(len(cols)) if column.rows is None else column.rows.tolist()
        for i, value in zip(where, column.python_values(), strict=True):
            rows[i][column.key] = value
    return [
        [p.HISTORY, "r", int(q), int(s), float(t), row]
        for q, s, t, row in zip(cols.seq, cols.step, cols.time, rows, strict=True)
    ]


def test_every_record_comes_back_exactly_and_in_order() -> None:
    rng = random.Random(9)
    for n in (0, 1, 7, 8, 50, 3000):
        records = _records(rng, n)
        payloads = [msgpack.packb(r, use_bin_type=True) for r in records]
        back: list[list[Any]] = []
        elements = 0
        for element in columns.build(payloads):
            doc = msgpack.unpackb(element, raw=False, strict_map_key=False)
            if columns.is_columns(doc):
                elements += 1
                got = _back(doc)
                assert len(got) >= columns.MIN_ROWS
                back.extend(got)
            else:
                back.append(doc)
        assert [r[2] for r in back] == [r[2] for r in records]  # every seq, in order
        for got, want in zip(back, records, strict=True):
            assert (
                got[:4] == want[:4]
                and same_value(got[4:], want[4:])
                or (
                    type(want[4]) is int
                    and got[4] == float(want[4])
                    and same_value(got[5], want[5])
                )
            ), (got, want)  # an int time travels as a float (the server stores floats)
        if n >= 50:
            assert elements >= 1
