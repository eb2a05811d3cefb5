"""The history store through the real server (SQLite and PostgreSQL): downsampling keeps
spikes at any size and zoom, block edges, every value kind, steps logged again, the bulk read."""

from __future__ import annotations

import math
from typing import Any

import httpx
import msgpack
import numpy as np
import pytest
from sqlalchemy import text
from trackd.server._db import database_url, unpooled_engine

from tests._support.scale import scaled
from tests._support.server import ServerProcess
from tests.server._batches import MSGPACK, get_msgpack, history, ingest, run_start, unpack

BLOCK = 1024  # trackd.server._blocks.BLOCK_POINTS: the edges tested below
HIST = "/runs/admin/proj/{}/history"
BULK = "/entities/admin/projects/proj/history"


def _series(n: int, spikes: dict[int, float]) -> list[float]:
    values = [math.sin(i / 50.0) for i in range(n)]
    for step, value in spikes.items():
        values[step] = value
    return values


def _log_series(
    admin: httpx.Client, run_id: str, values: list[Any], per_batch: int = 20_000
) -> None:
    ingest(admin, run_id, [run_start(run_id)]).raise_for_status()
    seq = 2
    for start in range(0, len(values), per_batch):
        chunk = values[start : start + per_batch]
        records = [history(run_id, seq + i, start + i, {"y": v}) for i, v in enumerate(chunk)]
        ingest(admin, run_id, records).raise_for_status()
        seq += len(chunk)


def _sampled(admin: httpx.Client, run_id: str, key: str = "y", **params: Any) -> dict[str, Any]:
    doc = get_msgpack(admin, HIST.format(run_id), keys=key, **params)["keys"]
    return doc.get(key, {"step": [], "value": [], "time": []})


def _extremes(spikes: dict[int, float], lo: int, hi: int) -> dict[int, float]:
    """The spikes that must show in steps lo..hi: the highest and the lowest there."""
    inside = {s: v for s, v in spikes.items() if lo <= s <= hi}
    if not inside:
        return {}
    top, bottom = max(inside, key=inside.__getitem__), min(inside, key=inside.__getitem__)
    return {top: inside[top], bottom: inside[bottom]}


def _check_spikes(admin: httpx.Client, run_id: str, n: int, spikes: dict[int, float]) -> None:
    ranges = [(0, n - 1), (0, 2**62), (min(spikes) - 3000, min(spikes) + 5000)]
    ranges += [(s - BLOCK, s + BLOCK) for s in spikes] + [(s, s) for s in spikes]
    for samples in (4, 10, 100, 1000, 5000):
        for lo, hi in ranges:
            params = {"samples": samples, "min_step": max(0, lo), "max_step": hi}
            got = _sampled(admin, run_id, **params)
            assert len(got["step"]) <= samples, (samples, lo, hi)
            points = dict(zip(got["step"], got["value"], strict=True))
            for step, value in _extremes(spikes, lo, hi).items():
                assert points.get(step) == value, (samples, lo, hi, step)
            again = _sampled(admin, run_id, **params)
            assert again == got  # deterministic: the same request gives the same points
    whole = _sampled(admin, run_id, samples=1000)  # no range given
    assert len(whole["step"]) <= 1000
    assert {whole["value"][whole["step"].index(s)] for s in _extremes(spikes, 0, n)} == set(
        _extremes(spikes, 0, n).values()
    )


def test_a_spike_survives_every_downsampling(admin: httpx.Client) -> None:
    n = 60_000
    spikes = {31_337: 1e6, 31_338: -1e6, 1023: 77.0, 45_056: -55.0}
    _log_series(admin, "spiky", _series(n, spikes))
    _check_spikes(admin, "spiky", n, spikes)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_spike_among_a_million_steps_survives(admin: httpx.Client) -> None:
    n = scaled(250_000, 1_000_000)  # TRACKD_SCALE=full: the million steps
    spikes = {n * 7 // 9: 1e9, n // 8 + 3: -1e9, n - 1: 42.0}
    _log_series(admin, "million", _series(n, spikes), per_batch=50_000)
    _check_spikes(admin, "million", n, spikes)


def test_zoom_ranges_at_block_edges_are_exact(admin: httpx.Client) -> None:
    n = 3 * BLOCK + 100
    values = [float(i) * 0.5 for i in range(n)]
    _log_series(admin, "edges", values, per_batch=700)  # batches that end inside blocks
    edges = [0, BLOCK - 1, BLOCK, 2 * BLOCK - 1, 2 * BLOCK, 3 * BLOCK - 1, 3 * BLOCK, n - 1]
    for lo in edges:
        for hi in edges:
            if hi < lo:
                continue
            got = _sampled(admin, "edges", min_step=lo, max_step=hi, samples=100_000)
            assert got["step"] == list(range(lo, hi + 1))
            assert got["value"] == values[lo : hi + 1]
            assert got["time"] == [1000.0 + s for s in range(lo, hi + 1)]
            rows = get_msgpack(admin, HIST.format("edges"), min_step=lo, max_step=hi)
            assert [r["_step"] for r in rows] == list(range(lo, hi + 1))
    # beyond the data, and a range between two points: nothing
    assert _sampled(admin, "edges", min_step=n, max_step=n + 10, samples=10)["step"] == []


KINDS: list[Any] = [
    1.5, -0.0, math.nan, math.inf, -math.inf, 0, -1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63),
    2**64 - 1, True, False, None, "text", "", {"_type": "histogram", "bins": [0.0, 1.0],
    "values": [3]}, [1, 2.5, "x"], 1e308, 5e-324,
]  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if type(a) is float and type(b) is float:
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_every_value_kind_round_trips(admin: httpx.Client) -> None:
    n = 2 * BLOCK + 7  # the kinds repeat over three blocks
    values = [KINDS[i % len(KINDS)] for i in range(n)]
    _log_series(admin, "kinds", values, per_batch=500)
    rows = get_msgpack(admin, HIST.format("kinds"))
    assert len(rows) == n
    for row, want in zip(rows, values, strict=True):
        assert _same(row["y"], want), (row, want)
    got = _sampled(admin, "kinds", samples=100_000)
    assert all(_same(a, b) for a, b in zip(got["value"], values, strict=True))
    # downsampled, a NaN, a str and a None still show; every value shown is one logged there
    few = _sampled(admin, "kinds", samples=20)
    for step, value in zip(few["step"], few["value"], strict=True):
        assert _same(value, values[step])
    assert any(type(v) is not float and type(v) is not int for v in few["value"])


def test_steps_logged_again_replace_points_inside_blocks(admin: httpx.Client) -> None:
    n = 3000
    _log_series(admin, "again", [float(i) for i in range(n)], per_batch=1000)
    # a resumed run goes back: steps 1500..1600 again (new values), then on past the end
    records = [history("again", 5000 + i, 1500 + i, {"y": -float(i)}) for i in range(101)]
    records.append(history("again", 6000, 5000, {"y": 5.0}))
    ingest(admin, "again", records).raise_for_status()
    got = _sampled(admin, "again", samples=100_000)
    want = {i: float(i) for i in range(n)} | {1500 + i: -float(i) for i in range(101)}
    want[5000] = 5.0
    assert got["step"] == sorted(want)
    assert got["value"] == [want[s] for s in sorted(want)]


def _bulk(admin: httpx.Client, accept: str | None = None, **body: Any) -> Any:
    headers = {"Accept": accept} if accept else {}
    response = admin.post(BULK, json=body, headers=headers)
    assert response.status_code == 200, response.text
    if accept:
        return msgpack.unpackb(response.content, raw=False, strict_map_key=False)
    return response.json()


def test_bulk_read_of_runs_and_keys(admin: httpx.Client) -> None:
    for r in range(3):
        run_id = f"bulk{r}"
        records: list[Any] = [run_start(run_id)]
        for step in range(2000):
            data = {"loss": 1.0 / (step + 1) + r, "acc": float(step % 7), "epoch": step // 100}
            records.append(history(run_id, step + 2, step, data))
        ingest(admin, run_id, records).raise_for_status()
    answer = _bulk(
        admin, runs=["bulk0", "bulk1", "bulk2", "nope"], keys=["loss", "acc"], samples=100
    )
    assert answer["not_found"] == ["nope"]
    assert [(s["run"], s["key"]) for s in answer["series"]] == [
        (f"bulk{r}", k) for r in range(3) for k in ("loss", "acc")
    ]
    for s in answer["series"]:
        assert 2 <= len(s["step"]) <= 100 and s["last_step"] == 1999
        if s["key"] == "loss":
            assert s["value"][0] == 1.0 + int(s["run"][-1])  # the max of the first bucket
    # the same in msgpack, and again: the same points
    packed = _bulk(
        admin,
        "application/msgpack",
        runs=["bulk0", "bulk1", "bulk2", "nope"],
        keys=["loss", "acc"],
        samples=100,
    )
    assert packed == answer
    # columnar: arrays as little-endian binary
    cols = _bulk(
        admin, "application/vnd.trackd.columns+msgpack", runs=["bulk1"], keys=["loss"], samples=100
    )
    [col] = cols["series"]
    [plain] = _bulk(admin, runs=["bulk1"], keys=["loss"], samples=100)["series"]
    assert np.frombuffer(col["step"], "<i8").tolist() == plain["step"]
    assert np.frombuffer(col["value"], "<f8").tolist() == plain["value"]
    # x axis by another key; incremental reads of a live run
    by_epoch = _bulk(admin, runs=["bulk0"], keys=["loss"], samples=10_000, x="epoch")["series"][0]
    assert by_epoch["x"] == [s // 100 for s in by_epoch["step"]] and len(by_epoch["x"]) == 2000
    tail = _bulk(admin, runs=["bulk0"], keys=["acc"], after_step=1990, samples=1000)["series"][0]
    assert tail["step"] == list(range(1991, 2000))
    assert (
        admin.post(BULK, json={"runs": ["bulk0"], "keys": ["acc"], "samples": 1}).status_code == 400
    )


def test_history_rows_read_back_exactly(admin: httpx.Client) -> None:
    records: list[Any] = [run_start("rows")]
    for step in range(0, 50, 2):
        records.append(
            history(
                "rows", step + 2, step, {"a": step, "b": str(step)} if step % 4 else {"a": step}
            )
        )
    ingest(admin, "rows", records).raise_for_status()
    rows = unpack(admin.get(HIST.format("rows"), headers=MSGPACK))
    want = [
        {"_step": s, "_timestamp": 1000.0 + s, "a": s} | ({"b": str(s)} if s % 4 else {})
        for s in range(0, 50, 2)
    ]
    assert rows == want


def _overwrite_payloads(server: ServerProcess, run_id: str) -> None:
    """Every block payload of the run replaced by a byte no reader can decode."""
    engine = unpooled_engine(database_url(server.db, server.data_dir))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE history_blocks SET data = :junk WHERE run_pk = "
                    "(SELECT id FROM runs WHERE run_id = :run)"
                ),
                {"junk": b"\xff", "run": run_id},
            )
    finally:
        engine.dispose()


def test_a_chart_of_a_plain_series_reads_summaries_not_points(server: ServerProcess) -> None:
    """30 blocks, 500 buckets: fewer blocks than buckets, so the sub-block summaries (16
    points each) answer; no block payload is opened, so overwriting them changes nothing."""
    n = 30 * BLOCK
    spikes = {12_345: 1e6, 20_000: -1e6}
    with server.client() as admin:
        _log_series(admin, "plain", _series(n, spikes))
        before = _sampled(admin, "plain", samples=1000)
        bulk_before = _bulk(admin, runs=["plain"], keys=["y"], samples=1000)
        assert {before["value"][before["step"].index(s)] for s in spikes} == {1e6, -1e6}
        assert 500 <= len(before["step"]) <= 1000
        _overwrite_payloads(server, "plain")
        assert _sampled(admin, "plain", samples=1000) == before
        assert _bulk(admin, runs=["plain"], keys=["y"], samples=1000) == bulk_before
        # a read at full resolution does open blocks: the payloads were really replaced
        assert admin.get(HIST.format("plain"), params={"keys": "y"}).status_code == 500
