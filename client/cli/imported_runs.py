"""What every ``trackd import`` shares: a run of another tracker, turned into trackd
records, is written as a trackd run log with a stable run id under ``TRACKD_DIR`` and
uploaded as ``trackd sync`` uploads an offline run. The log is the same bytes each time it is
built from the same source, and the server keeps each seq once, so importing twice leaves
one copy; a run that grew since uploads only what is new.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._wire import records as p
from .._wire.layout import RUN_LOG_NAME, run_dir_name
from .._wire.runlog import frame, header_bytes
from .._wire.settings import Settings
from .._wire.upload_state import load_progress
from ..errors import Error


@dataclass
class Converted:
    """One wandb run as trackd run-log payloads, and what could not be brought over."""

    run_id: str
    start_time: float
    payloads: list[bytes]
    rows: int
    files: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> how many
    notes: list[str] = field(default_factory=list)  # what was changed on the way, and why


def _report(converted: Converted, note: str) -> None:
    print(
        f"  run {converted.run_id}: {converted.rows} history rows, {converted.files} files; {note}",
        file=sys.stderr,
    )
    for note in converted.notes:
        print(f"  note: {note}", file=sys.stderr)
    for reason, count in sorted(converted.skipped.items()):
        print(f"  skipped {count} x {reason}", file=sys.stderr)


def write_run_log(root: Path, converted: Converted) -> tuple[Path | None, str]:
    """Write (or keep) the run's log; returns the run directory to sync (None: nothing
    to upload) and what happened."""
    run_dir = _run_dir(root, converted)
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


def _run_dir(root: Path, converted: Converted) -> Path:
    """The local directory of the run's id, wherever it is (an earlier import's)."""
    for found in sorted(root.glob(f"*run-*-{converted.run_id}")):
        if (found / RUN_LOG_NAME).exists():
            return found
    stamp = datetime.datetime.fromtimestamp(converted.start_time).strftime("%Y%m%d_%H%M%S")
    return root / run_dir_name("offline-run", stamp, converted.run_id)


def converted(
    records: list[Any], files: int, skipped: dict[str, int], notes: list[str] | None = None
) -> Converted:
    """``records`` (a RunStart first, seqs 1, 2, ...) as run-log payloads."""
    encoders = {p.History: p.history_encoder(), p.HistoryMedia: p.history_encoder(p.HISTORY_MEDIA)}
    payloads = [
        encoders[type(r)](r.run_id, r.seq, r.step, r.time, r.data)
        if type(r) in encoders
        else p.encode(r)
        for r in records
    ]
    rows = sum(type(r) in encoders for r in records)
    first = records[0]
    return Converted(first.run_id, first.start_time, payloads, rows, files, skipped, notes or [])


def upload(what: str, runs: list[Any], settings: Settings) -> int:
    """Write each run's log (``runs``: Converted, or an exception saying why it could not
    be read) and upload them; prints a line per run and a summary; returns how many failed."""
    from .sync import sync

    root = Path(settings.dir).expanduser()
    to_sync: list[Path] = []
    failed = 0
    for run in runs:
        try:
            if isinstance(run, Exception):
                raise run
            run_dir, note = write_run_log(root, run)
        except (Error, OSError, ValueError) as exc:
            print(f"  skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        _report(run, note)
        if run_dir is not None:
            to_sync.append(run_dir)
    if to_sync:
        failed += sync([str(d) for d in to_sync], settings)
    print(
        f"trackd import {what}: {len(runs) - failed} of {len(runs)} runs imported"
        + (f", {failed} failed" if failed else ""),
        file=sys.stderr,
    )
    return failed
