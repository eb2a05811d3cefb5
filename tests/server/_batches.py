"""Building ingest batches from the real wire records of :mod:`trackd._wire.records`."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgpack
from trackd._wire import records as p

MSGPACK = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}


def run_start(run_id: str, seq: int = 1, project: str = "proj", **fields: Any) -> p.RunStart:
    values: dict[str, Any] = {
        "kind": p.RUN_START,
        "run_id": run_id,
        "seq": seq,
        "entity": None,
        "project": project,
        "name": f"name-{run_id}",
        "group": None,
        "job_type": None,
        "tags": [],
        "notes": None,
        "config": {},
        "start_time": time.time(),
        "host": "testhost",
        "pid": 1,
        "program": "train.py",
        "git_commit": None,
        "mode": "online",
    }
    values.update(fields)
    return p.RunStart(**values)


def history(run_id: str, seq: int, step: int, data: dict[str, Any]) -> p.History:
    return p.History(p.HISTORY, run_id, seq, step, 1000.0 + step, data)


def finish(run_id: str, seq: int, state: str = "finished", exit_code: int = 0) -> p.Finish:
    return p.Finish(p.FINISH, run_id, seq, state, exit_code, time.time())


def body(
    run_id: str, records: list[Any], project: str = "proj", entity: str | None = None
) -> bytes:
    doc = {
        "entity": entity,
        "project": project,
        "run_id": run_id,
        "records": [list(r) for r in records],
    }
    return msgpack.packb(doc, use_bin_type=True)


def ingest(
    client: httpx.Client,
    run_id: str,
    records: list[Any],
    project: str = "proj",
    entity: str | None = None,
) -> httpx.Response:
    return client.post("/ingest", content=body(run_id, records, project, entity), headers=MSGPACK)


def unpack(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/msgpack"), response.text
    return msgpack.unpackb(response.content, raw=False, strict_map_key=False)


def get_msgpack(client: httpx.Client, url: str, **params: Any) -> Any:
    response = client.get(url, params=params, headers={"Accept": "application/msgpack"})
    assert response.status_code == 200, response.text
    return unpack(response)
