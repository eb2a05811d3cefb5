"""Several server replicas on one PostgreSQL database: what one replica writes, any other
reads at once; a batch and its retry sent to two replicas at the same time apply once;
labelled writers of one run spread over replicas lose no config, summary or history; the
crash reaper's pass runs in one replica at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from sqlalchemy import create_engine, text
from trackd.server._db import database_url
from trackd.server._duty_lock import REAPER

from tests._support.postgres import PostgresCluster
from tests._support.replicas import replicas
from tests._support.server import ServerProcess
from tests.server._batches import (
    MSGPACK,
    finish,
    get_msgpack,
    history,
    ingest,
    run_start,
    unpack,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]
TIMEOUT = 1.5  # the replicas' heartbeat timeout: each reaper tries a pass every 0.375 s


@dataclass
class Replicas:
    url: str  # the database's
    clients: list[httpx.Client]  # one per replica
    servers: list[ServerProcess]


@pytest.fixture(scope="module")
def three(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: PostgresCluster
) -> Iterator[Replicas]:
    """Three replicas on one database sharing one data dir, started once for the module."""
    tmp = tmp_path_factory.mktemp("replicas")
    url = pg_cluster.fresh_url()
    with replicas(3, tmp / "files", url, ["--heartbeat-timeout", str(TIMEOUT)]) as servers:
        clients = [server.client() for server in servers]
        yield Replicas(url, clients, servers)
        for client in clients:
            client.close()


def _post(client: httpx.Client, run_id: str, writer: str, records: list[Any]) -> httpx.Response:
    doc: dict[str, Any] = {"v": 1, "entity": None, "project": "proj", "run_id": run_id}
    doc["writer"] = writer
    doc["records"] = [list(r) for r in records]
    return client.post("/ingest", content=msgpack.packb(doc, use_bin_type=True), headers=MSGPACK)


def _together(*calls: Any) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)


def test_a_batch_and_its_retry_on_two_replicas_at_once_apply_once(three: Replicas) -> None:
    rows = 1000
    records: list[Any] = [run_start("twice")]
    records += [history("twice", 2 + i, i, {"x": float(i)}) for i in range(rows)]
    records += [finish("twice", rows + 2)]
    ca, cb, cc = three.clients
    answers: list[httpx.Response] = []
    _together(*(lambda c=c: answers.append(ingest(c, "twice", records)) for c in (ca, cb, ca, cb)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert {unpack(r)["durable_seq"] for r in answers} == {rows + 2}
    got = get_msgpack(cc, "/runs/admin/proj/twice/history")  # read on the third replica
    assert [(row["_step"], row["x"]) for row in got] == [(i, float(i)) for i in range(rows)]
    run = cc.get("/runs/admin/proj/twice").json()
    assert run["last_seq"] == rows + 2 and run["state"] == "finished"


def test_writers_of_one_run_spread_over_replicas_lose_nothing(three: Replicas) -> None:
    writers, batches, per_batch = 4, 6, 50
    clients = three.clients

    def write(w: int) -> None:
        label = f"rank-{w}"
        start = run_start("spread", writer=label, primary=w == 0, config={f"c{w}": w})
        assert _post(clients[w % 3], "spread", label, [start]).status_code == 200
        seq = 1
        for b in range(batches):
            steps = range(b * per_batch, (b + 1) * per_batch)
            records = [history("spread", seq + 1 + i, s, {f"w{w}": s}) for i, s in enumerate(steps)]
            seq += per_batch
            response = _post(clients[(w + b) % 3], "spread", label, records)  # the next replica
            assert response.status_code == 200, response.text
        assert _post(clients[(w + 1) % 3], "spread", label, [finish("spread", seq + 1)]).is_success

    _together(*(lambda w=w: write(w) for w in range(writers)))
    run = clients[1].get("/runs/admin/proj/spread").json()
    got = get_msgpack(clients[2], "/runs/admin/proj/spread/history")
    total = batches * per_batch
    assert run["config"] == {f"c{w}": w for w in range(writers)}
    assert run["summary"] == {f"w{w}": total - 1 for w in range(writers)}
    assert run["state"] == "finished"
    assert [row["_step"] for row in got] == list(range(total))
    for w in range(writers):
        assert [row[f"w{w}"] for row in got] == list(range(total))


def _state(client: httpx.Client, run_id: str) -> str:
    state: str = client.get(f"/runs/admin/proj/{run_id}").json()["state"]
    return state


def test_no_replica_reaps_while_another_replicas_pass_holds_the_lock(three: Replicas) -> None:
    engine = create_engine(database_url(three.url, Path()))
    client = three.clients[0]
    try:
        with engine.connect() as holder:  # as a replica in the middle of its pass
            holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": REAPER})
            ingest(client, "quiet", [run_start("quiet")]).raise_for_status()
            time.sleep(3 * TIMEOUT)  # twelve passes of each of the three reapers
            assert _state(client, "quiet") == "running"
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REAPER})
        deadline = time.monotonic() + 10
        while _state(client, "quiet") != "crashed":
            assert time.monotonic() < deadline, "no replica marked the silent run crashed"
            time.sleep(0.1)
    finally:
        engine.dispose()


def _waiting_for_a_lock(engine: Any) -> bool:
    """Whether a replica's ingest transaction waits for the run's row lock (the test's)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND wait_event_type = 'Lock' AND query LIKE 'SELECT%FOR UPDATE' "
        "AND pid <> pg_backend_pid()"
    )
    with engine.connect() as conn:
        return bool(conn.execute(query).scalar())


def test_a_replica_killed_mid_batch_applies_nothing_and_a_retry_elsewhere_applies_it_once(
    three: Replicas,
) -> None:
    """Last in the module: it kills replica 2 (and starts it again). The test holds the run's
    row lock, so replica 2's transaction is open and waiting when it is killed; the retry on
    another replica, sent meanwhile, waits too; then the lock is released."""
    rows = 2000
    records: list[Any] = [history("cut", 2 + i, i, {"x": float(i)}) for i in range(rows)]
    other, reader = three.clients[0], three.clients[1]
    ingest(other, "cut", [run_start("cut")]).raise_for_status()
    engine = create_engine(database_url(three.url, Path()))
    victim = three.servers[2]
    answers: dict[str, Any] = {}

    def attempt(name: str, client: httpx.Client) -> None:
        try:
            answers[name] = ingest(client, "cut", records)
        except httpx.HTTPError as exc:
            answers[name] = exc

    try:
        with engine.connect() as holder, victim.client() as doomed:
            holder.execute(text("SELECT id FROM runs WHERE run_id = 'cut' FOR UPDATE"))
            first = threading.Thread(target=attempt, args=("first", doomed))
            first.start()
            deadline = time.monotonic() + 60
            while not _waiting_for_a_lock(engine):
                assert time.monotonic() < deadline, "replica 2 never reached the run's lock"
                time.sleep(0.01)
            victim.kill()  # kill -9 while its transaction waits for the run's lock
            first.join(30)
            retry = threading.Thread(target=attempt, args=("retry", other))
            retry.start()
            time.sleep(0.5)  # the retry waits for the lock too
            holder.rollback()
        retry.join(60)
        assert isinstance(answers["first"], httpx.HTTPError), answers
        assert answers["retry"].status_code == 200, answers["retry"].text
        assert unpack(answers["retry"])["durable_seq"] == rows + 1
        got = get_msgpack(reader, "/runs/admin/proj/cut/history")
        assert [(r["_step"], r["x"]) for r in got] == [(i, float(i)) for i in range(rows)]
        assert reader.get("/runs/admin/proj/cut").json()["last_seq"] == rows + 1
    finally:
        engine.dispose()
        victim.start()
