"""The user whose API key created a run: kept on the run, filtered and sorted on (issue 10)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests._support.server import ServerProcess
from tests.server._batches import history, ingest, run_start


def _ids(client: httpx.Client, **params: Any) -> list[str]:
    answer = client.get("/entities/lab/projects/proj/runs", params=params)
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["runs"]]


@pytest.mark.timeout(60)
def test_a_run_keeps_the_user_whose_key_created_it(
    server: ServerProcess, admin: httpx.Client
) -> None:
    made = admin.post("/admin/users", json={"name": "bob"})
    assert made.status_code == 201, made.text
    assert admin.post("/admin/teams", json={"name": "lab"}).status_code == 201
    for user in ("admin", "bob"):
        added = admin.post("/admin/teams/lab/members", json={"user": user})
        assert added.status_code == 200, added.text
    with server.client(made.json()["api_key"]) as bob:
        ingest(admin, "a1", [run_start("a1", host="h-b")], entity="lab").raise_for_status()
        ingest(bob, "b1", [run_start("b1", host="h-a")], entity="lab").raise_for_status()
        # bob writing more of admin's run does not make it his
        ingest(bob, "a1", [history("a1", 2, 0, {"x": 1.0})], entity="lab").raise_for_status()
        assert bob.get("/runs/lab/proj/a1").json()["user"] == "admin"
        assert bob.get("/runs/lab/proj/b1").json()["user"] == "bob"
        listed = {
            r["id"]: r["user"] for r in bob.get("/entities/lab/projects/proj/runs").json()["runs"]
        }
        assert listed == {"a1": "admin", "b1": "bob"}
        assert _ids(bob, filters=json.dumps({"user": "bob"})) == ["b1"]
        assert _ids(bob, filters=json.dumps({"user": {"$in": ["admin"]}})) == ["a1"]
        assert _ids(bob, filters=json.dumps({"host": "h-a"})) == ["b1"]
        assert _ids(bob, order="user") == ["a1", "b1"]
        assert _ids(bob, order="-user") == ["b1", "a1"]
        assert _ids(bob, order="host") == ["b1", "a1"]
        assert _ids(bob, order="-host") == ["a1", "b1"]
