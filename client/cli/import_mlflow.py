"""``trackd import mlflow --tracking-uri URI [--experiment NAME]``: the runs of an MLflow
tracking store (a file store, a database or a server) brought into trackd through the
exactly-once upload path (``imported_runs``), with the ``mlflow`` client (``pip install
mlflow``, or ``mlflow-skinny`` for file stores and servers).

An experiment is a project (its name made a valid project name), a run keeps its id and name;
params are the config (strings, as MLflow keeps them); each metric's history lands at its
steps (values logged at one step form one row, at the latest of their timestamps; the largest
float, which MLflow's database stores keep for an infinite value, is infinite); tags other
than ``mlflow.*`` become ``key=value`` tags, ``mlflow.note.content`` the notes; artifacts are
downloaded under ``TRACKD_DIR/mlflow-artifacts/<run id>/`` and saved with the run; FINISHED
is finished, FAILED and KILLED failed, a RUNNING run stays running.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._wire import records as p
from .._wire.limits import valid_name
from .._wire.settings import Settings, load
from ..errors import Error, UsageError
from .imported_runs import Converted, converted, upload

STATES = {"FINISHED": ("finished", 0), "FAILED": ("failed", 1), "KILLED": ("failed", 1)}


def _client(tracking_uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise UsageError(
            "trackd import mlflow needs the mlflow package, which is not installed; install "
            "it with: pip install mlflow (or mlflow-skinny)"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri)


def import_mlflow(
    tracking_uri: str, experiment: str | None = None, settings: Settings | None = None
) -> int:
    """Import the runs of ``experiment`` (default: every experiment); returns how many failed."""
    settings = settings or load()
    client = _client(tracking_uri)
    files_root = Path(settings.dir).expanduser() / "mlflow-artifacts"
    runs: list[Any] = []
    for exp in _experiments(client, experiment):
        for run in _runs(client, exp.experiment_id):
            print(
                f"trackd import mlflow: [{len(runs) + 1}] {exp.name}/{run.info.run_id}",
                file=sys.stderr,
            )
            try:
                runs.append(convert(client, exp.name, run, files_root))
            except (Error, OSError, ValueError) as exc:
                runs.append(Error(f"run {run.info.run_id}: {exc}"))
    if not runs:
        print("trackd import mlflow: no runs found", file=sys.stderr)
        return 0
    return upload("mlflow", runs, settings)


def _experiments(client: Any, name: str | None) -> list[Any]:
    if name is not None:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise UsageError(f"trackd import mlflow: no experiment named {name!r}")
        return [found]
    return list(_pages(client.search_experiments))


def _runs(client: Any, experiment_id: str) -> Iterator[Any]:
    return _pages(lambda page_token: client.search_runs([experiment_id], page_token=page_token))


def _pages(fetch: Any) -> Iterator[Any]:
    token = None
    while True:
        page = fetch(page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def convert(client: Any, experiment: str, run: Any, files_root: Path) -> Converted:
    """One MLflow run as trackd run-log payloads."""
    info, data = run.info, run.data
    skipped: dict[str, int] = {}
    out: list[Any] = [_run_start(experiment, run)]
    rows, times = _history(client, info.run_id, sorted(data.metrics), skipped)
    for step in sorted(rows):
        out.append(p.History(p.HISTORY, info.run_id, len(out) + 1, step, times[step], rows[step]))
    files = _artifacts(client, info.run_id, files_root / info.run_id)
    for name, path in files:
        out.append(p.File(p.FILE, info.run_id, len(out) + 1, name, path, "now"))
    if info.status in STATES:
        state, code = STATES[info.status]
        end = (info.end_time or info.start_time) / 1000
        out.append(p.Finish(p.FINISH, info.run_id, len(out) + 1, state, code, end))
    return converted(out, len(files), skipped)


def _run_start(experiment: str, run: Any) -> p.RunStart:
    info, tags = run.info, run.data.tags
    user_tags = [
        f"{k}={v}" if v else k for k, v in sorted(tags.items()) if not k.startswith("mlflow.")
    ]
    return p.RunStart(
        p.RUN_START, info.run_id, 1, None, project_name(experiment), info.run_name or info.run_id,
        None, None, user_tags, tags.get("mlflow.note.content") or None, dict(run.data.params),
        info.start_time / 1000, tags.get("mlflow.source.name", ""), 0, None,
        tags.get("mlflow.source.git.commit") or None, "offline",
    )  # fmt: skip


def _history(
    client: Any, run_id: str, keys: list[str], skipped: dict[str, int]
) -> tuple[dict[int, dict[str, Any]], dict[int, float]]:
    """Every metric's values by step; a key logged twice at one step keeps its latest."""
    rows: dict[int, dict[str, Any]] = {}
    times: dict[int, float] = {}
    for key in keys:
        for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
            row = rows.setdefault(metric.step, {})
            if key in row:
                reason = "metric values logged again at a step (the latest is kept)"
                skipped[reason] = skipped.get(reason, 0) + 1
            row[key] = _metric_value(metric.value)
            times[metric.step] = max(times.get(metric.step, 0.0), metric.timestamp / 1000)
    return rows, times


def _metric_value(value: float) -> float:
    """A metric value as it was logged: MLflow's database stores keep an infinite value as
    the largest float (``sys.float_info.max``, with its sign), and give that back."""
    if value == sys.float_info.max:
        return math.inf
    if value == -sys.float_info.max:
        return -math.inf
    return value


def _artifacts(client: Any, run_id: str, into: Path) -> list[tuple[str, str]]:
    """(name, local path) of each artifact of the run, downloaded into ``into`` once."""
    names = sorted(_artifact_paths(client, run_id, None))
    if names and not all((into / name).is_file() for name in names):
        into.mkdir(parents=True, exist_ok=True)
        client.download_artifacts(run_id, "", str(into))
    return [(name, str((into / name).resolve())) for name in names]


def _artifact_paths(client: Any, run_id: str, folder: str | None) -> Iterator[str]:
    for entry in client.list_artifacts(run_id, folder):
        if entry.is_dir:
            yield from _artifact_paths(client, run_id, entry.path)
        else:
            yield entry.path


def project_name(experiment: str) -> str:
    """An experiment's name as a trackd project name (invalid characters become ``-``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", experiment).lstrip("_.-")[:64] or "mlflow"
    return name if valid_name(name) else "mlflow"
