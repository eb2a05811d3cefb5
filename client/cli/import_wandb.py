"""``trackd import wandb PATH...``: wandb runs (offline runs, or the local copy wandb keeps of
online ones) brought into trackd through the exactly-once upload path (``imported_runs``).

Each ``run-<id>.wandb`` file becomes a trackd run log with the same run id, as if the run had
been logged offline: config, history rows at their wandb steps and timestamps, metric
definitions, the summary, name, tags, notes, group, job type, the files under the run's
``files/`` folder and its end state.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .._wire.settings import Settings, load
from ..errors import Error
from .imported_runs import Converted, converted, upload
from .wandb_log import read_records
from .wandb_run import WandbRun


def find_run_files(paths: list[str]) -> list[Path]:
    """The ``run-*.wandb`` files in ``paths`` (files, run directories or wandb folders)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(path.glob("run-*.wandb")) or sorted(path.glob("*run-*/run-*.wandb"))
        else:
            raise Error(
                f"trackd import wandb: {raw!r} does not exist; pass .wandb files or run dirs"
            )
    return found


def import_wandb(paths: list[str], settings: Settings | None = None) -> int:
    """Import the wandb runs under ``paths``; returns how many failed."""
    settings = settings or load()
    try:
        files = find_run_files(paths)
    except Error as exc:
        print(exc, file=sys.stderr)
        return 1
    if not files:
        print("trackd import wandb: no run-*.wandb files found", file=sys.stderr)
        return 0
    runs: list[Any] = []
    for i, wandb_file in enumerate(files, 1):
        print(f"trackd import wandb: [{i}/{len(files)}] reading {wandb_file}", file=sys.stderr)
        try:
            runs.append(convert(wandb_file))
        except (Error, OSError, ValueError) as exc:
            runs.append(Error(f"{wandb_file}: {exc}"))
    return upload("wandb", runs, settings)


def convert(wandb_file: Path) -> Converted:
    """The trackd run log payloads of one ``.wandb`` file."""
    run = WandbRun(wandb_file.parent / "files")
    for record in read_records(wandb_file):
        run.take(record)
    if run.run is None:
        raise Error(f"{wandb_file}: holds no run record (an empty or foreign .wandb file)")
    _run_id, records, files = run.records(wandb_file.parent / "files")
    return converted(records, files, run.skipped)
