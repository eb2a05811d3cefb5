"""``trackd import wandb PATH...``: wandb runs (offline runs, or the local copy wandb keeps of
online ones) brought into trackd through the exactly-once upload path (``imported_runs``).

Each run becomes a trackd run log with the same run id, as if the run had been logged
offline (a run wandb resumed, with a ``run-<id>.wandb`` file per attempt, is one run): config, history rows at their wandb steps and timestamps, metric
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
    groups = by_run(files)
    for i, attempts in enumerate(groups, 1):
        shown = ", ".join(str(f) for f in attempts)
        print(f"trackd import wandb: [{i}/{len(groups)}] reading {shown}", file=sys.stderr)
        try:
            runs.append(convert(attempts))
        except (Error, OSError, ValueError) as exc:
            runs.append(Error(f"{shown}: {exc}"))
    return upload("wandb", runs, settings)


def by_run(files: list[Path]) -> list[list[Path]]:
    """``files`` grouped by run id (a resumed run has a file per attempt), each group in the
    order its attempts started; a file given twice is read once."""
    groups: dict[str, list[tuple[float, Path]]] = {}
    seen: set[Path] = set()
    for path in files:
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        run = _run_record(path)
        run_id = run.run_id if run is not None else f"?{path}"  # reported by convert()
        start = run.start_time.seconds + run.start_time.nanos / 1e9 if run is not None else 0.0
        groups.setdefault(run_id, []).append((start, path))
    return [[path for _, path in sorted(group)] for group in groups.values()]


def _run_record(path: Path) -> Any:
    """The first run record of a ``.wandb`` file (None: none, or the file is unreadable)."""
    try:
        for record in read_records(path):
            if record.WhichOneof("record_type") == "run":
                return record.run
    except (Error, OSError, ValueError):
        pass
    return None


def convert(attempts: list[Path]) -> Converted:
    """The trackd run log payloads of one run's ``.wandb`` files (one per attempt)."""
    run = WandbRun()
    for wandb_file in attempts:
        run.begin(wandb_file.parent / "files")
        for record in read_records(wandb_file):
            run.take(record)
    if run.run is None:
        raise Error(f"{attempts[0]}: holds no run record (an empty or foreign .wandb file)")
    _run_id, records, files = run.records()
    return converted(records, files, run.skipped, run.notes)
