"""``trackd import mlflow``, end to end: real MLflow runs (made by the mlflow package in a
subprocess) in a file store, a SQLite store and an MLflow server (``mlflow server`` on a SQLite
store, artifacts through its proxy), imported with the real CLI into a real trackd server, and
read back from it.

The default run imports a file store. MLflow migrates a new SQLite store in ~15 s on a quiet
machine (90 s seen under load): the SQLite and server tests run with
``TRACKD_TEST_MLFLOW_STORES=1`` (or ``TRACKD_SCALE=full``), sharing one store the module makes
(``mlflow_db``)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[dev]')")

from tests._support.server import ServerProcess, free_port  # noqa: E402
from tests.e2e.conftest import Remote  # noqa: E402
from tests.integrations.conftest import files  # noqa: E402

# Runs in its own process; prints what it logged. Values 1.0 apart: each exact in a float.
MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys, mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment(sys.argv[2])
    made = []
    for status in ("FINISHED", "FAILED"):
        with mlflow.start_run(run_name="mlflow-run") as run:
            mlflow.log_params({"lr": 0.01, "optimizer": "adam"})
            mlflow.set_tags({"team": "cv", "mlflow.note.content": "from mlflow"})
            logged = {}
            for step in range(5):
                loss = [float("nan"), 2.0, float("inf"), -float("inf"), 0.5][step]
                mlflow.log_metric("loss", loss, step=step)
                logged[step] = {"loss": loss}
            mlflow.log_metric("acc", 0.75, step=4)
            logged[4]["acc"] = 0.75
            with open("report.txt", "w") as f:
                f.write("hello")
            mlflow.log_artifact("report.txt", artifact_path="reports")
            if status == "FAILED":
                mlflow.end_run(status="FAILED")
        made.append({"id": run.info.run_id, "logged": logged})
    print(json.dumps(made))
    """
)


ALL_STORES = (
    os.environ.get("TRACKD_TEST_MLFLOW_STORES") == "1" or os.environ.get("TRACKD_SCALE") == "full"
)
OTHER_STORE = pytest.mark.skipif(
    not ALL_STORES,
    reason="MLflow migrates a SQLite store in 15-90 s: set TRACKD_TEST_MLFLOW_STORES=1",
)


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true", **extra)


def _import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackd", "import", "mlflow", *args],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URI of a SQLite tracking store MLflow made (and migrated) once for the module."""
    pytest.importorskip("alembic", reason="alembic is not installed (pip install -e '.[dev]')")
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{db}"
    subprocess.run(
        [sys.executable, "-c", "import mlflow, sys; mlflow.MlflowClient(sys.argv[1])"
         ".search_experiments()", uri],
        capture_output=True, text=True, timeout=120, env=_env(), check=True,
    )  # fmt: skip
    return uri


def _log_and_import(uri: str, experiment: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Log the script's two runs into ``experiment`` of ``uri``; import the experiment."""
    out = subprocess.run(
        [sys.executable, "-c", MLFLOW_SCRIPT, uri, experiment], capture_output=True, text=True,
        timeout=120, env=_env(), cwd=tmp_path, check=True,
    )  # fmt: skip
    made = json.loads(out.stdout.strip().splitlines()[-1], parse_constant=float)
    done = _import("--tracking-uri", uri, "--experiment", experiment)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 runs imported" in done.stderr
    assert isinstance(made, list)
    return made


def _check(remote: Remote, project: str, made: dict[str, Any], failed: dict[str, Any]) -> None:
    """What the server holds of the script's runs is what they logged."""
    doc = remote.run(project, made["id"])
    assert doc is not None and doc["state"] == "finished"
    assert doc["name"] == "mlflow-run" and doc["notes"] == "from mlflow"
    assert doc["config"] == {"lr": "0.01", "optimizer": "adam"}  # params: strings in MLflow
    assert doc["tags"] == ["team=cv"]
    rows = remote.history(project, made["id"])
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 4]
    for row in rows:
        logged = made["logged"][str(row["_step"])]
        assert all(_same(row[k], v) for k, v in logged.items()), (row, logged)
    assert all(r["_timestamp"] > 1.7e9 for r in rows)  # MLflow's times, in seconds
    assert files(remote, project, made["id"]) == ["reports/report.txt"]
    listing = remote.get(f"/runs/admin/{project}/{made['id']}/files")["files"]
    assert [f["size"] for f in listing] == [len("hello")]
    assert remote.run(project, failed["id"])["state"] == "failed"


def test_mlflow_runs_land_with_params_metrics_tags_artifacts_and_state_once(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    made, failed = _log_and_import(uri, "vision exp", tmp_path)
    _check(remote, "vision-exp", made, failed)

    again = _import("--tracking-uri", uri)
    assert again.returncode == 0 and again.stderr.count("already imported") == 2, again.stderr
    assert len(remote.history("vision-exp", made["id"])) == 5


@pytest.mark.slow
@pytest.mark.timeout(300)
@OTHER_STORE
def test_a_sqlite_tracking_store_is_imported_the_same_way(
    online: ServerProcess, remote: Remote, mlflow_db: str, tmp_path: Path
) -> None:
    """Before the fix, its infinite values (kept by MLflow as the largest float) landed as
    1.8e308."""
    made, failed = _log_and_import(mlflow_db, "sqlite exp", tmp_path)
    _check(remote, "sqlite-exp", made, failed)
    again = _import("--tracking-uri", mlflow_db, "--experiment", "sqlite exp")
    assert again.returncode == 0 and again.stderr.count("already imported") == 2, again.stderr


@pytest.fixture
def mlflow_server(mlflow_db: str, tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on the module's SQLite store, its artifacts behind its proxy."""
    for module in ("flask", "flask_cors"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[dev]')")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", mlflow_db,
         "--artifacts-destination", str(tmp_path / "served-artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "mlflow server did not start in 90 s"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
@OTHER_STORE
def test_an_mlflow_server_is_imported_the_same_way(
    online: ServerProcess, remote: Remote, mlflow_server: str, tmp_path: Path
) -> None:
    made, failed = _log_and_import(mlflow_server, "served exp", tmp_path)
    # the artifacts went through the server's proxy, not to a path on this side
    assert not (tmp_path / "mlruns").exists()
    assert list((tmp_path / "served-artifacts").rglob("report.txt"))
    _check(remote, "served-exp", made, failed)


def test_the_largest_float_a_database_store_gives_back_is_read_as_inf() -> None:
    """MLflow's SQL stores keep inf as +-sys.float_info.max (the store tests above, run with
    TRACKD_TEST_MLFLOW_STORES=1, show it end to end); the importer gives inf back."""
    from trackd.cli.import_mlflow import _metric_value

    assert _metric_value(sys.float_info.max) == math.inf
    assert _metric_value(-sys.float_info.max) == -math.inf
    assert _metric_value(1e308) == 1e308 and _metric_value(0.5) == 0.5
