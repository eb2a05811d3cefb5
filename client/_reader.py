"""Reading a run back from its run directory, without a server.

Example::

    run = trackd.read_run("trackd/offline-run-20261124_101500-k3x9q2ma")
    print(run.state, run.config["lr"], run.summary["loss"], len(run.history))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._values import summary_row
from ._wire import records as p
from ._wire.layout import RUN_LOG_NAME
from ._wire.runlog import HEADER, LogFormatError, check_header, stream_frames
from ._wire.summary import MetricDef, SummaryState, parse_summary_modes
from .errors import RunLogError


@dataclass(slots=True)
class RunData:
    """Everything a run log holds, folded into the shape a user reads."""

    id: str = ""
    name: str = ""
    project: str = ""
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    host: str = ""
    git_commit: str | None = None
    state: str = "running"
    exit_code: int | None = None
    start_time: float = 0.0
    end_time: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    last_seq: int = 0
    last_step: int = -1
    torn_bytes: int = 0
    path: str = ""


def log_path(path: str | os.PathLike[str]) -> Path:
    """The run log inside a run directory (or ``path`` itself if it is the log)."""
    path = Path(path)
    if path.is_dir():
        path = path / RUN_LOG_NAME
    if not path.exists():
        raise RunLogError(f"no run log at {path}; pass a run directory such as ./trackd/run-...")
    return path


def iter_records(path: str | os.PathLike[str], torn: list[int] | None = None) -> Iterator[Any]:
    """The stored records of a run log in order (one per seq), read a chunk at a time;
    appends the torn tail's size to ``torn`` (if given) once the log is read."""
    file = log_path(path)
    with open(file, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(HEADER.size)
        try:
            if head:
                check_header(head, str(file))
        except LogFormatError as exc:
            raise RunLogError(str(exc)) from exc
        good_end, last = min(size, HEADER.size), 0
        for payload, end in stream_frames(f, HEADER.size):
            good_end = end
            try:
                record = p.decode(payload)
            except p.DecodeError:
                continue  # a frame with a good checksum but an unknown kind: from a newer writer
            if record.seq > last:
                last = record.seq
                yield record
    if torn is not None:
        torn.append(size - good_end)


def read_records(path: str | os.PathLike[str]) -> tuple[list[p.Record], int]:
    """The stored records of a run log in order (one per seq) and the torn tail's size."""
    torn: list[int] = []
    records = list(iter_records(path, torn))
    return records, torn[0]


def read_run(path: str | os.PathLike[str], history: bool = True) -> RunData:
    """Read a run directory (or run log file) into a :class:`RunData`; with
    ``history=False`` the rows are folded into the summary but not kept (bounded memory)."""
    torn: list[int] = []
    run = RunData(path=str(log_path(path)))
    summary = SummaryState()
    for record in iter_records(path, torn):
        _apply(run, summary, record, history)
        run.records += 1
    run.summary = summary.to_dict()
    run.torn_bytes = torn[0]
    return run


def _apply(run: RunData, summary: SummaryState, r: Any, history: bool = True) -> None:
    run.last_seq = r.seq
    if r.kind == p.HISTORY or r.kind == p.HISTORY_MEDIA:
        if history:
            row = {"_step": r.step, "_timestamp": r.time, "_runtime": r.time - run.start_time}
            row.update(r.data)
            run.history.append(row)
        run.last_step = r.step
        summary.observe(r.data if r.kind == p.HISTORY else summary_row(r.data))
    elif r.kind == p.RUN_START:
        _apply_start(run, r)
    elif r.kind == p.CONFIG:
        run.config.update(r.data)
    elif r.kind == p.SUMMARY:
        summary.set_explicit(r.data)
    elif r.kind == p.METRIC:
        run.metrics.append(
            {"name": r.name, "step_metric": r.step_metric, "summary": r.summary, "goal": r.goal}
        )
        summary.define(MetricDef(r.name, r.step_metric, parse_summary_modes(r.summary), r.goal))
    elif r.kind == p.FINISH:
        run.state, run.exit_code, run.end_time = r.state, r.exit_code, r.time
    elif r.kind == p.RUN_UPDATE:
        for key, value in r.data.items():
            if key in p.UPDATABLE_FIELDS:
                setattr(run, key, list(value) if key == "tags" else value)


def _apply_start(run: RunData, r: p.RunStart) -> None:
    if not run.id:
        run.start_time = r.start_time
    run.id, run.name, run.project, run.entity = r.run_id, r.name, r.project, r.entity
    run.group, run.job_type, run.tags, run.notes = r.group, r.job_type, list(r.tags), r.notes
    run.host, run.git_commit = r.host, r.git_commit
    run.config.update(r.config)
    run.state, run.exit_code, run.end_time = "running", None, None
