"""Heartbeats, and runs marked crashed when they stop."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import msgpack
import pytest

from tests._support.postgres import PostgresCluster
from tests._support.server import running_server
from tests.server._batches import MSGPACK, finish, history, ingest, run_start


def _state(client: httpx.Client, run_id: str) -> str:
    state: str = client.get(f"/runs/admin/proj/{run_id}").json()["state"]
    return state


def _wait_for(client: httpx.Client, run_id: str, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _state(client, run_id) != state:
        assert time.monotonic() < deadline, f"run {run_id} never became {state}"
        time.sleep(0.1)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def quick(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A client of a server whose heartbeat timeout is 1.5 s, one per database for the
    module (each test uses its own run ids)."""
    url = None
    if request.param == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        url = cluster.fresh_url()
    args = ["--heartbeat-timeout", "1.5"]
    with running_server(tmp_path_factory.mktemp("beat") / "server", db=url, args=args) as server:
        with server.client() as client:
            yield client


@pytest.mark.timeout(60)
def test_silent_run_is_marked_crashed(quick: httpx.Client) -> None:
    c = quick
    ingest(c, "quiet", [run_start("quiet")]).raise_for_status()
    ingest(c, "alive", [run_start("alive")]).raise_for_status()
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        ref = {"entity": "admin", "project": "proj", "run_id": "alive"}
        assert c.post("/heartbeat", json=ref).json()["state"] == "running"
        time.sleep(0.3)
    _wait_for(c, "quiet", "crashed", 10)
    assert _state(c, "alive") == "running"
    ingest(c, "quiet", [run_start("quiet", seq=2)]).raise_for_status()
    assert _state(c, "quiet") == "running"
    missing = c.post("/heartbeat", json={"project": "proj", "run_id": "nope"})
    assert missing.status_code == 404


def _writer_states(client: httpx.Client, run_id: str) -> tuple[str, dict[str, str]]:
    doc = client.get(f"/runs/admin/proj/{run_id}").json()
    return doc["state"], {w["label"]: w["state"] for w in doc["writers"]}


def _beat(client: httpx.Client, run_id: str, writer: str) -> str:
    ref = {"entity": "admin", "project": "proj", "run_id": run_id, "writer": writer}
    response = client.post("/heartbeat", json=ref)
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


def _writer_body(run_id: str, writer: str, records: list[object]) -> bytes:
    doc = {"entity": None, "project": "proj", "run_id": run_id, "writer": writer}
    doc["records"] = [list(r) for r in records]  # type: ignore[call-overload]
    return msgpack.packb(doc, use_bin_type=True)


def _write(client: httpx.Client, run_id: str, writer: str, records: list[object]) -> None:
    body = _writer_body(run_id, writer, records)
    client.post("/ingest", content=body, headers=MSGPACK).raise_for_status()


def _both_reaped(client: httpx.Client) -> bool:
    run_state, _ = _writer_states(client, "pri")
    _, writers = _writer_states(client, "sec")
    return run_state == "crashed" and writers["rank-2"] == "crashed"


@pytest.mark.timeout(60)
def test_each_writer_of_a_shared_run_is_watched(quick: httpx.Client) -> None:
    """Run ``sec``: its secondary rank-2 goes silent (its machine lost: no Finish ever
    comes) and reads crashed while the run and the other writers run on; its next heartbeat
    brings it back. Run ``pri``: its primary goes silent while a secondary keeps beating:
    the primary and the run read crashed (the secondary's beats do not revive the run, the
    primary's do)."""
    c = quick
    for run_id, label, primary in [
        ("sec", "rank-0", True),
        ("sec", "rank-1", False),
        ("sec", "rank-2", False),
        ("pri", "rank-0", True),
        ("pri", "rank-1", False),
    ]:
        _write(c, run_id, label, [run_start(run_id, writer=label, primary=primary)])
    deadline = time.monotonic() + 10.0
    while not _both_reaped(c):
        assert time.monotonic() < deadline, (_writer_states(c, "sec"), _writer_states(c, "pri"))
        for run_id, label in [("sec", "rank-0"), ("sec", "rank-1"), ("pri", "rank-1")]:
            _beat(c, run_id, label)
        time.sleep(0.2)
    expect = {"rank-0": "running", "rank-1": "running", "rank-2": "crashed"}
    assert _writer_states(c, "sec") == ("running", expect)
    assert _writer_states(c, "pri") == ("crashed", {"rank-0": "crashed", "rank-1": "running"})
    assert _beat(c, "pri", "rank-1") == "crashed"  # a secondary does not revive the run
    assert _beat(c, "sec", "rank-2") == "running"
    assert _writer_states(c, "sec")[1]["rank-2"] == "running"
    _write(c, "pri", "rank-0", [history("pri", 2, 0, {"x": 1.0})])  # the primary is back
    assert _writer_states(c, "pri") == ("running", {"rank-0": "running", "rank-1": "running"})
    for label in ("rank-2", "rank-1", "rank-0"):
        _write(c, "sec", label, [finish("sec", 2)])
    expect = {"rank-0": "finished", "rank-1": "finished", "rank-2": "finished"}
    assert _writer_states(c, "sec") == ("finished", expect)
    ref = {"project": "proj", "run_id": "sec", "writer": "no/such"}
    refused = c.post("/heartbeat", json=ref)
    assert refused.status_code == 400 and "no/such" in refused.text
