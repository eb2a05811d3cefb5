"""Listing, filtering and downsampling through the real server."""

from __future__ import annotations

import json

import httpx

from tests.server._batches import finish, get_msgpack, history, ingest, run_start

RUNS = "/entities/admin/projects/proj/runs"


def _make_runs(admin: httpx.Client) -> None:
    specs = [
        ("a", "finished", "g1", "train", ["baseline"], {"lr": 0.1, "opt": {"name": "adam"}}, 0.5),
        ("b", "failed", "g1", "eval", ["x", "baseline"], {"lr": 0.01, "opt": {"name": "sgd"}}, 0.2),
        ("c", "running", "g2", "train", [], {"lr": 0.001}, 0.9),
    ]
    for run_id, state, group, job_type, tags, config, loss in specs:
        records = [
            run_start(run_id, group=group, job_type=job_type, tags=tags, config=config),
            history(run_id, 2, 0, {"loss": loss}),
        ]
        if state != "running":
            records.append(
                finish(run_id, 3, state=state, exit_code=0 if state == "finished" else 1)
            )
        ingest(admin, run_id, records).raise_for_status()


def _ids(admin: httpx.Client, spec: object) -> list[str]:
    response = admin.get(RUNS, params={"filters": json.dumps(spec)})
    assert response.status_code == 200, response.text
    return sorted(run["id"] for run in response.json()["runs"])


def test_runs_filters(admin: httpx.Client) -> None:
    _make_runs(admin)
    assert _ids(admin, {}) == ["a", "b", "c"]
    assert _ids(admin, {"state": "finished"}) == ["a"]
    assert _ids(admin, {"group": "g1", "job_type": {"$ne": "eval"}}) == ["a"]
    assert _ids(admin, {"tags": "baseline"}) == ["a", "b"]
    assert _ids(admin, {"tags": {"$in": ["x", "y"]}}) == ["b"]
    assert _ids(admin, {"tags": {"$nin": ["baseline"]}}) == ["c"]
    assert _ids(admin, {"config.lr": {"$gte": 0.01}}) == ["a", "b"]
    assert _ids(admin, {"config.opt.name": "sgd"}) == ["b"]
    assert _ids(admin, {"summary.loss": {"$lt": 0.6, "$gt": 0.3}}) == ["a"]
    assert _ids(admin, {"state": {"$in": ["failed", "running"]}}) == ["b", "c"]
    spec = {"$or": [{"name": "name-c"}, {"$and": [{"group": "g1"}, {"config.lr": 0.01}]}]}
    assert _ids(admin, spec) == ["b", "c"]
    assert [p["name"] for p in admin.get("/entities/admin/projects").json()["projects"]] == ["proj"]


def test_bad_filters_are_400(admin: httpx.Client) -> None:
    _make_runs(admin)
    for spec, fragment in [
        ("{not json", "not valid JSON"),
        (json.dumps({"colour": 1}), "filter field 'colour' is not supported"),
        (json.dumps({"state": {"$like": "x"}}), "unknown filter operator '$like'"),
        (json.dumps({"state": {"$in": "x"}}), "$in on 'state' takes a list"),
    ]:
        response = admin.get(RUNS, params={"filters": spec})
        assert response.status_code == 400, response.text
        assert fragment in response.json()["error"]["message"]


def test_downsampling_keeps_spikes(admin: httpx.Client) -> None:
    n = 5000
    values = {i: 1.0 for i in range(n)}
    values[1234], values[4321] = 1000.0, -1000.0
    records = [run_start("spiky")]
    records += [history("spiky", i + 2, i, {"loss": values[i]}) for i in range(n)]
    ingest(admin, "spiky", records).raise_for_status()
    sampled = get_msgpack(admin, "/runs/admin/proj/spiky/history", samples=100)["keys"]["loss"]
    assert len(sampled["step"]) <= 100
    assert sampled["step"] == sorted(sampled["step"])
    assert 1234 in sampled["step"] and 4321 in sampled["step"]
    assert max(sampled["value"]) == 1000.0 and min(sampled["value"]) == -1000.0
    assert sampled["time"][sampled["step"].index(1234)] == 1000.0 + 1234


def test_unknown_things_are_404(admin: httpx.Client) -> None:
    assert admin.get("/runs/admin/proj/nope").status_code == 404
    assert "run 'nope' not found" in admin.get("/runs/admin/proj/nope").text
    missing = admin.get("/entities/admin/projects/nope/runs")
    assert missing.status_code == 404 and "project 'nope'" in missing.json()["error"]["message"]
    assert admin.get("/no/such/endpoint").json()["error"]["code"] == "not_found"
