"""``trackd import mlflow``, end to end: real MLflow runs (a file store, made by the mlflow
package in a subprocess) imported with the real CLI into a real server, and read back."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[dev]')")

from tests._support.server import ServerProcess  # noqa: E402
from tests.e2e.conftest import Remote  # noqa: E402
from tests.integrations.conftest import files  # noqa: E402

# Runs in its own process; prints what it logged. Values 1.0 apart: each exact in a float.
MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys, mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("vision exp")
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


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true", **extra)


def _import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackd", "import", "mlflow", *args],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


def test_mlflow_runs_land_with_params_metrics_tags_artifacts_and_state_once(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    out = subprocess.run(
        [sys.executable, "-c", MLFLOW_SCRIPT, uri], capture_output=True, text=True,
        timeout=120, env=_env(), cwd=tmp_path, check=True,
    )  # fmt: skip
    made, failed = json.loads(out.stdout.strip().splitlines()[-1], parse_constant=float)
    done = _import("--tracking-uri", uri, "--experiment", "vision exp")
    assert done.returncode == 0, done.stderr
    assert "2 of 2 runs imported" in done.stderr
    doc = remote.run("vision-exp", made["id"])
    assert doc is not None and doc["state"] == "finished"
    assert doc["name"] == "mlflow-run" and doc["notes"] == "from mlflow"
    assert doc["config"] == {"lr": "0.01", "optimizer": "adam"}  # params: strings in MLflow
    assert doc["tags"] == ["team=cv"]
    rows = remote.history("vision-exp", made["id"])
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 4]
    for row in rows:
        logged = made["logged"][str(row["_step"])]
        assert all(_same(row[k], v) for k, v in logged.items()), (row, logged)
    assert all(r["_timestamp"] > 1.7e9 for r in rows)  # MLflow's times, in seconds
    assert files(remote, "vision-exp", made["id"]) == ["reports/report.txt"]
    assert remote.run("vision-exp", failed["id"])["state"] == "failed"

    again = _import("--tracking-uri", uri)
    assert again.returncode == 0 and again.stderr.count("already imported") == 2, again.stderr
    assert len(remote.history("vision-exp", made["id"])) == 5
