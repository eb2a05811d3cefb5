"""``trackd.Api`` reading runs a real server ingested (batches posted as the uploader does)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import trackd
from trackd._api import ApiEntity, ApiRun
from trackd.errors import AuthError, CommError, UsageError

from tests._support.server import ServerProcess, running_server
from tests.server._batches import finish, history, ingest, run_start

BIG = 2**62 + 1  # not exact as a float64
SPECIAL = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "big": BIG, "text": "ok"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server holding project admin/proj: runs a, b, c, a special-values run and a long one."""
    with running_server(tmp_path_factory.mktemp("api") / "server") as srv:
        with srv.client() as admin:
            for run_id, records in _runs().items():
                ingest(admin, run_id, records).raise_for_status()
        yield srv


def _runs() -> dict[str, list[object]]:
    specs = [
        ("a", "finished", {"lr": 0.1, "opt": "adam"}, ["baseline"]),
        ("b", "failed", {"lr": 0.01, "opt": "sgd"}, ["baseline"]),
        ("c", "running", {"lr": 0.001}, []),
    ]
    out: dict[str, list[object]] = {}
    for run_id, state, config, tags in specs:
        records: list[object] = [run_start(run_id, config=config, tags=tags, group="g")]
        records += [history(run_id, 2 + i, i, {"loss": 1.0 / (i + 1), "i": i}) for i in range(10)]
        if state != "running":
            records.append(finish(run_id, 12, state=state, exit_code=int(state == "failed")))
        out[run_id] = records
    out["special"] = [run_start("special"), history("special", 2, 0, SPECIAL)]
    out["special"] += [history("special", 3, 1, {"nan": 1.0}), finish("special", 4)]
    long = [run_start("long")]
    long += [history("long", i + 2, i, {"y": _spiky(i), "z": i}) for i in range(5000)]
    long.append(history("long", 5002, 100_000, {"y": 0.5}))  # a far jump in steps
    out["long"] = long
    return out


def _spiky(step: int) -> float:
    return {1234: 1000.0, 4321: -1000.0}.get(step, 1.0)


@pytest.fixture
def api(server: ServerProcess) -> Iterator[trackd.Api]:
    with trackd.Api(host=server.url, api_key=server.admin_key) as client:
        yield client


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def test_viewer_entities_and_projects(api: trackd.Api) -> None:
    viewer = api.viewer()
    assert viewer.user == "admin" and viewer.admin and viewer.entities == ["admin"]
    assert api.entities() == [ApiEntity("admin", "user")]
    projects = api.projects()
    assert [p.path for p in projects] == ["admin/proj"] and projects[0].created_at
    assert api.projects("admin") == projects


def test_runs_and_filters(api: trackd.Api) -> None:
    def ids(path: str, filters: dict[str, object] | None = None) -> list[str]:
        return sorted(run.id for run in api.runs(path, filters=filters))

    assert ids("admin/proj") == ["a", "b", "c", "long", "special"]
    assert ids("proj", {"state": "finished"}) == ["a", "special"]
    assert ids("proj", {"config.lr": {"$gt": 0.005}}) == ["a", "b"]
    assert ids("proj", {"$and": [{"tags": "baseline"}, {"state": {"$ne": "failed"}}]}) == ["a"]
    with pytest.raises(CommError, match="filter field 'colour' is not supported") as info:
        api.runs("proj", filters={"colour": "red"})
    assert info.value.status == 400


def test_runs_sorted_by_the_server(api: trackd.Api) -> None:
    assert [r.id for r in api.runs("proj", order="-config.lr")][:3] == ["a", "b", "c"]
    assert [r.id for r in api.runs("proj", order="config.lr")][:3] == ["c", "b", "a"]
    finished = api.runs("proj", filters={"state": {"$ne": "running"}}, order="-created_at")
    assert [r.id for r in finished] == ["special", "b", "a"]


def test_run_fields(api: trackd.Api) -> None:
    run = api.run("admin/proj/b")
    assert (
        isinstance(run, ApiRun) and run.path == "admin/proj/b" and repr(run).startswith("<ApiRun")
    )
    assert (run.id, run.entity, run.project, run.name) == ("b", "admin", "proj", "name-b")
    assert (run.state, run.group, run.tags, run.exit_code) == ("failed", "g", ["baseline"], 1)
    assert run.config == {"lr": 0.01, "opt": "sgd"}
    assert run.summary["loss"] == 0.1 and run.summary["i"] == 9
    assert run.created_at and run.heartbeat_at and run.last_step == 9
    assert api.run("proj/b") == run and api.run("admin/proj/runs/b") == run
    with pytest.raises(CommError, match="run 'nope' not found") as info:
        api.run("admin/proj/nope")
    assert info.value.status == 404
    with pytest.raises(UsageError, match="is not 'entity/project/run_id'"):
        api.run("a/b/c/d/e")


def test_history_rows_and_dataframe(api: trackd.Api) -> None:
    run = api.run("admin/proj/a")
    rows = run.history(pandas=False)
    assert [r["_step"] for r in rows] == list(range(10))
    assert rows[3] == {"_step": 3, "_timestamp": 1003.0, "loss": 0.25, "i": 3}
    assert [r.keys() - {"_step", "_timestamp"} for r in run.history(keys=["i"], pandas=False)] == [
        {"i"}
    ] * 10
    frame = run.history()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 10
    assert list(frame["_step"]) == list(range(10)) and frame["loss"].iloc[1] == 0.5
    assert list(run.scan_history()) == rows
    with pytest.raises(UsageError, match="keys='loss' is a str; pass a list"):
        run.history(keys="loss")  # type: ignore[arg-type]


def test_special_values_round_trip(api: trackd.Api) -> None:
    run = api.run("admin/proj/special")
    first, second = run.history(pandas=False)
    for key, value in SPECIAL.items():
        assert _same(first[key], value), (key, first[key])
    assert first["big"] == BIG and second == {"_step": 1, "_timestamp": 1001.0, "nan": 1.0}
    frame = run.history(keys=["big", "inf"])
    assert frame["big"].dtype == "int64" and int(frame["big"].iloc[0]) == BIG
    assert frame["inf"].iloc[0] == math.inf
    assert run.summary["nan"] == 1.0 and run.summary["ninf"] == -math.inf
    assert run.summary["big"] == BIG and isinstance(run.summary["big"], int)


def test_downsampled_history(api: trackd.Api) -> None:
    run = api.run("admin/proj/long")
    rows = run.history(keys=["y"], samples=100, pandas=False)
    steps = [r["_step"] for r in rows]
    assert len(rows) <= 100 and steps == sorted(steps)  # flat stretches collapse
    assert {1234, 4321, 100_000} <= set(steps)
    assert all(r["_timestamp"] == 1000.0 + r["_step"] for r in rows)
    assert max(r["y"] for r in rows) == 1000.0 and min(r["y"] for r in rows) == -1000.0
    frame = run.history(samples=50)
    assert isinstance(frame, pd.DataFrame) and set(frame.columns) >= {"_step", "y", "z"}
    assert len(frame) <= 2 * 51


def test_scan_history_pages_over_step_gaps(api: trackd.Api) -> None:
    run = api.run("admin/proj/long")
    scanned = list(run.scan_history(keys=["y"], page_steps=700))
    assert [r["_step"] for r in scanned] == [*range(5000), 100_000]
    assert scanned == run.history(keys=["y"], samples=None, pandas=False)
    assert len(run.history(keys=["y"], pandas=False)) <= 2 * 501  # sampled by default


def test_api_defaults_from_login_and_directory(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="api_key not configured"):
        trackd.Api(host=server.url)
    monkeypatch.setenv("TRACKD_PROJECT", "proj")
    trackd.login(key=server.admin_key, host=server.url)
    with trackd.Api() as api:
        assert api.base_url == server.url
        assert sorted(r.id for r in api.runs(filters={"state": "failed"})) == ["b"]
        assert api.run("c").config == {"lr": 0.001}
    with trackd.Api(host=server.url, api_key="trk_wrong") as wrong:
        with pytest.raises(AuthError, match="the API key is not valid"):
            wrong.viewer()
