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


def packed(record: Any) -> bytes:
    """One record (a protocol NamedTuple or a plain list) as the msgpack the daemon stores."""
    return msgpack.packb(list(record), use_bin_type=True)


def nested_list(depth: int, leaf: bytes = b"\xc0") -> bytes:
    """msgpack for ``[[[...leaf...]]]`` nested ``depth`` deep, beyond what ``packb`` allows."""
    return b"\x91" * depth + leaf


def raw_history(run_id: str, seq: int, step: int, key: str, raw_value: bytes) -> bytes:
    """A History record whose one value is given as raw msgpack bytes."""
    head = msgpack.packb([p.HISTORY, run_id, seq, step, 1000.0 + step], use_bin_type=True)
    # the array header says 5 fields; make it 6 and append the data map {key: raw_value}
    assert head[0] == 0x95
    return b"\x96" + head[1:] + b"\x81" + msgpack.packb(key) + raw_value


def raw_body(
    run_id: str, records: list[bytes], project: str = "proj", entity: str | None = None
) -> bytes:
    """An ingest body from records that are already msgpack (see :func:`packed`)."""
    packer = msgpack.Packer(use_bin_type=True)
    head = packer.pack_map_header(4)
    for key, value in (("entity", entity), ("project", project), ("run_id", run_id)):
        head += packer.pack(key) + packer.pack(value)
    return (
        head + packer.pack("records") + packer.pack_array_header(len(records)) + b"".join(records)
    )


def ingest_raw(client: httpx.Client, run_id: str, records: list[bytes]) -> httpx.Response:
    return client.post("/ingest", content=raw_body(run_id, records), headers=MSGPACK)
