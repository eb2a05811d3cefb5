"""``trackd import wandb PATH...``: wandb runs (offline runs, or the local copy wandb keeps of
online ones) brought into trackd through the exactly-once upload path.

Each ``run-<id>.wandb`` file becomes a trackd run log with the same run id, written into
``<TRACKD_DIR>/offline-run-<start>-<id>/`` as if the run had been logged offline: config,
history rows at their wandb steps and timestamps, metric definitions, the summary, tags,
notes, group, job type, the files under the run's ``files/`` folder and its end state.
``trackd sync`` then uploads it through the daemon. The log is the same bytes each time it
is built from the same file, and the server keeps each seq once, so importing twice leaves
one copy; a run that has grown since (wandb resumed it) uploads only what is new.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .._wire import records as p
from .._wire.layout import RUN_LOG_NAME, run_dir_name
from .._wire.runlog import frame, header_bytes
from .._wire.settings import Settings, load
from .._wire.upload_state import load_progress
from ..errors import Error
from .wandb_log import read_records
from .wandb_run import WandbRun


@dataclass
class Converted:
    """One wandb run as trackd run-log payloads, and what could not be brought over."""

    run_id: str
    start_time: float
    payloads: list[bytes]
    rows: int
    files: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> how many


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
    from .sync import sync

    settings = settings or load()
    try:
        files = find_run_files(paths)
    except Error as exc:
        print(exc, file=sys.stderr)
        return 1
    if not files:
        print("trackd import wandb: no run-*.wandb files found", file=sys.stderr)
        return 0
    root = Path(settings.dir).expanduser()
    to_sync: list[Path] = []
    failed = 0
    for i, wandb_file in enumerate(files, 1):
        print(f"trackd import wandb: [{i}/{len(files)}] reading {wandb_file}", file=sys.stderr)
        try:
            converted = convert(wandb_file)
            run_dir, note = write_run_log(root, converted)
        except (Error, OSError, ValueError) as exc:
            print(f"  skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        _report(converted, note)
        if run_dir is not None:
            to_sync.append(run_dir)
    if to_sync:
        failed += sync([str(d) for d in to_sync], settings)
    print(
        f"trackd import wandb: {len(files) - failed} of {len(files)} runs imported"
        + (f", {failed} failed" if failed else ""),
        file=sys.stderr,
    )
    return failed


def _report(converted: Converted, note: str) -> None:
    print(
        f"  run {converted.run_id}: {converted.rows} history rows, {converted.files} files; {note}",
        file=sys.stderr,
    )
    for reason, count in sorted(converted.skipped.items()):
        print(f"  skipped {count} x {reason}", file=sys.stderr)


def write_run_log(root: Path, converted: Converted) -> tuple[Path | None, str]:
    """Write (or keep) the run's log; returns the run directory to sync (None: nothing
    to upload) and what happened."""
    stamp = datetime.datetime.fromtimestamp(converted.start_time).strftime("%Y%m%d_%H%M%S")
    run_dir = root / run_dir_name("offline-run", stamp, converted.run_id)
    log = run_dir / RUN_LOG_NAME
    data = header_bytes() + b"".join(frame(x) for x in converted.payloads)
    old = log.read_bytes() if log.exists() else None
    if old == data and load_progress(run_dir).seq >= len(converted.payloads):
        return None, f"already imported ({run_dir})"
    if old is not None and not data.startswith(old):
        raise Error(
            f"{run_dir} holds another version of run {converted.run_id} than this file; "
            "move it away to import this one"
        )
    if old != data:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = log.with_suffix(".import-tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, log)
    return run_dir, f"written to {run_dir}"


def convert(wandb_file: Path) -> Converted:
    """The trackd run log payloads of one ``.wandb`` file."""
    run = WandbRun()
    for record in read_records(wandb_file):
        run.take(record)
    if run.run is None:
        raise Error(f"{wandb_file}: holds no run record (an empty or foreign .wandb file)")
    run_id, records, files = run.records(wandb_file.parent / "files")
    encode_row = p.history_encoder()
    payloads = [
        encode_row(r.run_id, r.seq, r.step, r.time, r.data) if type(r) is p.History else p.encode(r)
        for r in records
    ]
    rows = sum(type(r) is p.History for r in records)
    start = records[0].start_time
    return Converted(run_id, start, payloads, rows, files, run.skipped)
