"""Shared runs at the server: several labelled writers of one run, each applied exactly once.

Batches are built from the real wire records in the ingest envelope with its ``writer``
field, posted to a real server on SQLite and on PostgreSQL (one server per database for the
module: each test uses its own run ids), and read back through the read API.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
from trackd._wire import records as p
from trackd._wire.ingest import decode_body, encode_body

from tests._support.postgres import PostgresCluster
from tests._support.server import running_server
from tests.server._batches import MSGPACK, finish, get_msgpack, history, run_start, unpack


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def admin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    url = None
    if request.param == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        url = cluster.fresh_url()
    with running_server(tmp_path_factory.mktemp("shared") / "server", db=url) as server:
        with server.client() as client:
            yield client


def _post(client: httpx.Client, run_id: str, writer: str, records: list[Any]) -> httpx.Response:
    doc = {"v": 1, "entity": None, "project": "proj", "run_id": run_id, "writer": writer}
    doc["records"] = [list(r) for r in records]
    return client.post("/ingest", content=msgpack.packb(doc), headers=MSGPACK)


def test_the_envelope_carries_the_writer() -> None:
    payloads = [p.encode(run_start("e1"))]
    assert (
        decode_body(encode_body(None, "proj", "e1", payloads, writer="rank-3")).writer == "rank-3"
    )
    plain = encode_body(None, "proj", "e1", payloads)
    assert b"writer" not in plain and decode_body(plain).writer == ""


def _durable(client: httpx.Client, run_id: str, writer: str, records: list[Any]) -> int:
    response = _post(client, run_id, writer, records)
    assert response.status_code == 200, response.text
    return int(unpack(response)["durable_seq"])


def _run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    doc = get_msgpack(client, f"/runs/admin/proj/{run_id}")
    assert isinstance(doc, dict)
    return doc


def _writers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["label"]: w for w in doc["writers"]}


def _series(client: httpx.Client, run_id: str, key: str) -> dict[int, Any]:
    rows = get_msgpack(client, f"/runs/admin/proj/{run_id}/history", keys=key)
    return {row["_step"]: row[key] for row in rows if key in row}


def test_each_writer_has_its_own_seqs_applied_exactly_once(admin: httpx.Client) -> None:
    a = [run_start("sh1", writer="rank-0", primary=True, config={"lr": 0.1})]
    a += [history("sh1", s, s - 2, {"rank-0/x": s}) for s in range(2, 6)]
    b = [run_start("sh1", writer="rank-1", primary=False, config={"workers": 2})]
    b += [history("sh1", s, s - 2, {"rank-1/x": -s}) for s in range(2, 8)]
    assert _durable(admin, "sh1", "rank-0", a) == 5
    assert _durable(admin, "sh1", "rank-1", b) == 7
    assert _durable(admin, "sh1", "rank-0", a) == 5  # a retried batch changes nothing
    assert _durable(admin, "sh1", "rank-1", b[3:]) == 7
    doc = _run(admin, "sh1")
    assert doc["config"] == {"lr": 0.1, "workers": 2}  # config merges
    assert doc["name"] == "name-sh1"  # the primary's metadata, not the secondary's
    writers = _writers(doc)
    assert writers["rank-0"]["last_seq"] == 5 and writers["rank-0"]["primary"] is True
    assert writers["rank-1"]["last_seq"] == 7 and writers["rank-1"]["primary"] is False
    assert writers["rank-1"]["last_step"] == 5
    assert _series(admin, "sh1", "rank-0/x") == {s - 2: s for s in range(2, 6)}
    assert _series(admin, "sh1", "rank-1/x") == {s - 2: -s for s in range(2, 8)}
    assert doc["summary"]["rank-0/x"] == 5 and doc["summary"]["rank-1/x"] == -7


def test_same_key_and_step_from_two_writers_keeps_the_later_value(admin: httpx.Client) -> None:
    _durable(admin, "sh2", "rank-0", [run_start("sh2", writer="rank-0", primary=True)])
    _durable(admin, "sh2", "rank-1", [run_start("sh2", writer="rank-1", primary=False)])
    _durable(admin, "sh2", "rank-0", [history("sh2", 2, 0, {"loss": 1.0, "a": 1})])
    _durable(admin, "sh2", "rank-1", [history("sh2", 2, 0, {"loss": 2.0, "b": 2})])
    _durable(admin, "sh2", "rank-1", [history("sh2", 3, 1, {"loss": 3.0})])
    _durable(admin, "sh2", "rank-0", [history("sh2", 3, 1, {"loss": 4.0})])
    assert _series(admin, "sh2", "loss") == {0: 2.0, 1: 4.0}
    assert _series(admin, "sh2", "a") == {0: 1} and _series(admin, "sh2", "b") == {0: 2}
    summary = _run(admin, "sh2")["summary"]
    assert summary["loss"] == 4.0 and summary["a"] == 1 and summary["b"] == 2


def test_the_run_ends_with_its_primary_and_a_crashed_secondary_shows(admin: httpx.Client) -> None:
    _durable(admin, "sh3", "rank-0", [run_start("sh3", writer="rank-0", primary=True)])
    late = run_start("sh3", writer="rank-1", primary=False, name="not-the-name", host="h2")
    _durable(admin, "sh3", "rank-1", [late])
    _durable(admin, "sh3", "rank-1", [finish("sh3", 2, state="crashed", exit_code=None)])  # type: ignore[arg-type]
    doc = _run(admin, "sh3")
    assert doc["state"] == "running" and doc["name"] == "name-sh3"
    assert _writers(doc)["rank-1"]["state"] == "crashed"
    assert _writers(doc)["rank-1"]["host"] == "h2"
    assert _writers(doc)["rank-0"]["state"] == "running"
    _durable(admin, "sh3", "rank-0", [finish("sh3", 2)])
    doc = _run(admin, "sh3")
    assert doc["state"] == "finished"
    assert _writers(doc)["rank-0"]["state"] == "finished"
    assert _writers(doc)["rank-1"]["state"] == "crashed"
    # a heartbeat of a still-uploading secondary does not bring a run its primary ended back
    _durable(admin, "sh4", "rank-0", [run_start("sh4", writer="rank-0", primary=True)])
    _durable(admin, "sh4", "rank-0", [finish("sh4", 2, state="crashed", exit_code=None)])  # type: ignore[arg-type]
    beat = admin.post("/heartbeat", json={"project": "proj", "run_id": "sh4"})
    assert beat.status_code == 200, beat.text
    assert _run(admin, "sh4")["state"] == "crashed"


def test_concurrent_writers_lose_nothing(admin: httpx.Client) -> None:
    """8 writers post 25 batches each to one run at once: every point, config key and
    summary key of every writer is there, and no request failed (no deadlock)."""
    writers, batches, rows = 8, 25, 20
    errors: list[str] = []

    def write(w: int) -> None:
        label = f"rank-{w}"
        with httpx.Client(base_url=str(admin.base_url), headers=admin.headers, timeout=60) as c:
            start = run_start("shc", writer=label, primary=w == 0, config={f"c{w}": w})
            seq = 1
            _durable(c, "shc", label, [start])
            for b in range(batches):
                recs = []
                for i in range(rows):
                    seq += 1
                    step = b * rows + i
                    recs.append(history("shc", seq, step, {f"w{w}": step, "shared": w}))
                recs.append(p.Summary(p.SUMMARY, "shc", seq + 1, {f"s{w}": b}))
                recs.append(p.Config(p.CONFIG, "shc", seq + 2, {f"k{w}": b}))
                seq += 2
                response = _post(c, "shc", label, recs)
                if response.status_code != 200:
                    errors.append(response.text)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert not errors
    doc = _run(admin, "shc")
    n = batches * rows
    for w in range(writers):
        assert _series(admin, "shc", f"w{w}") == {s: s for s in range(n)}
        assert doc["config"][f"c{w}"] == w and doc["config"][f"k{w}"] == batches - 1
        assert doc["summary"][f"s{w}"] == batches - 1
        assert _writers(doc)[f"rank-{w}"]["last_seq"] == 1 + batches * (rows + 2)
    assert set(_series(admin, "shc", "shared")) == set(range(n))


def test_a_bad_writer_label_refuses_the_batch(admin: httpx.Client) -> None:
    response = _post(admin, "sh5", "rank 3/..", [run_start("sh5")])
    assert response.status_code == 422, response.text
    assert "writer" in response.text and "rank 3/.." in response.text
    assert admin.get("/runs/admin/proj/sh5").status_code == 404
