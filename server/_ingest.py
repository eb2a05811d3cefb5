"""Applying an ingest batch: msgpack records in, one transaction, each ``seq`` at most once.

A batch is a msgpack map ``{"entity", "project", "run_id", "records"}`` whose records are
the arrays :mod:`trackd._wire.records` encodes, in increasing ``seq`` order. Two kinds of wrong:

- a broken envelope (not msgpack, not such a map, a bad run id or project, a record that is
  not an array of int kind, this batch's run id and an int ``seq`` in 1..2**63-1, or seqs
  not increasing) refuses the whole batch with :class:`InvalidRecord` (422); nothing is
  applied. The daemon never stores such a record.
- a record that breaks :mod:`._record_rules` (or is of a kind the server does not store) is
  refused on its own, before the database is touched; the valid records are applied.

Plain History rows (:mod:`trackd._wire.columns`) are stored as columns, whether the daemon
sent them as a columnar element (body version 2) or as records: stretches of such records
are cut out with the same code the daemon uses, so neither costs a Python object per value.

The run is locked, every record with ``seq <= last_seq`` is skipped (so a retried batch
changes nothing), the rest are applied, the refused ones are kept in ``rejected_records``,
and ``last_seq`` moves to the batch's last seq, refused records included, all in the same
transaction. The same record always gets the same answer: the checks read nothing but it.

A batch of a labelled writer of a shared run (the body's ``writer``) counts seqs against that
writer's own ``last_seq`` (:mod:`._writers`), under the same run lock. History from several
writers lands in the run's one set of keys: a (key, step) two writers both log keeps the
value applied last, as for a step logged twice. Config and summary merge. Only the primary
writer's RunStart sets the run's metadata and only its Finish ends the run; every labelled
writer's own state (and its Finish: a crashed secondary reads ``crashed``) is kept in
``writers``.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from sqlalchemy import Connection, Row, select, update
from trackd._wire import columns
from trackd._wire import records as p
from trackd._wire.ingest import decode_body
from trackd._wire.limits import WRITER_RULE, valid_writer
from trackd._wire.summary import MetricDef, dump_state, load_state, parse_summary_modes

from . import (
    _console,
    _ingest_columns,
    _rejections,
    _rich_values,
    _run_blobs,
    _run_json,
    _runs,
    _system_stats,
    _writers,
)
from . import _schema as s
from ._auth import Principal, entity_for
from ._db import Database
from ._history_batch import BatchPoints
from ._history_store import BlockWriter, KeyTail
from ._ingest_columns import COLUMNS, HistoryColumns
from ._record_rules import INT64_MAX, plain_history, record_problem
from ._values import StoredValue, encode_value
from .errors import BadRequest, InvalidRecord

_STORED = (
    "send only RunStart, History, Config, Summary, Metric, Finish, RunUpdate, File, Output, "
    "SystemStats"
)
_COLUMNS_UPDATED = {"name": "name", "notes": "notes", "group": "run_group", "job_type": "job_type"}

Encoded = dict[str, StoredValue]  # a History's list and map values, encoded while checking


@dataclass(frozen=True, slots=True)
class Batch:
    """A parsed batch: its valid records, and ``(seq, reason)`` for each refused one."""

    entity: str | None
    project: str
    run_id: str
    records: list[Any]
    rejected: list[tuple[int, str]]
    last_seq: int  # the batch's highest seq, refused records included (0: no records)
    encoded: dict[int, Encoded]  # by seq
    writer: str = ""  # the labelled writer of a shared run whose log this is


@dataclass(frozen=True, slots=True)
class Outcome:
    """The run's ``last_seq`` after commit, and the records of this batch refused now."""

    durable_seq: int
    rejected: list[tuple[int, str]]


def parse_batch(body: bytes) -> Batch:
    """The checked batch in a request body, or :class:`InvalidRecord` for a broken envelope."""
    try:
        doc = decode_body(body)
    except p.DecodeError as exc:
        raise InvalidRecord(str(exc)) from exc
    entity = doc.entity
    if entity is not None and not isinstance(entity, str):
        raise InvalidRecord(f"entity {entity!r} must be a str or nil")
    try:
        project = _runs.ensure_project(doc.project)
        run_id = _runs.check_run_id(doc.run_id)
    except BadRequest as exc:
        raise InvalidRecord(exc.message) from exc
    if not valid_writer(doc.writer):
        raise InvalidRecord(f"writer {doc.writer!r} is not a writer label: {WRITER_RULE}")
    records: list[Any] = []
    rejected: list[tuple[int, str]] = []
    encoded: dict[int, Encoded] = {}
    last = 0
    for lo, hi, stretch in columns.split(doc.records):
        if stretch is not None and _fits(doc.records[lo:hi], run_id, stretch, last):
            element: Any = stretch  # plain rows sent as records: stored as columns
        elif doc.version >= 2 and columns.is_columns(doc.records[lo]):
            element = doc.records[lo]
        else:
            for index in range(lo, hi):
                fields = doc.records[index]
                last = _envelope_seq(index, fields, run_id, last)
                record, problem = _check_record(fields, encoded)
                if problem is None:
                    records.append(record)
                else:
                    rejected.append((last, problem))
            continue
        rows, refused, last = _ingest_columns.parse(lo, element, last)
        records.extend([rows] if rows is not None else [])
        rejected.extend(refused)
    return Batch(entity, project, run_id, records, rejected, last, encoded, doc.writer)


def _fits(stretch: list[Any], run_id: str, element: dict[str, Any], last: int) -> bool:
    """Whether plain records are of this batch's run with seqs going up from ``last``; if
    not, they go the per-record way, which names the broken one."""
    seq = np.frombuffer(element["seq"], "<i8")
    return (
        set(map(operator.itemgetter(1), stretch)) == {run_id}
        and last < int(seq[0])
        and bool(np.all(seq[1:] > seq[:-1]))
    )


def _envelope_seq(index: int, fields: Any, run_id: str, last: int) -> int:
    """The record's seq, or :class:`InvalidRecord` if its envelope is broken."""
    if type(fields) is not list or len(fields) < 3 or type(fields[0]) is not int:
        raise InvalidRecord(
            f"record #{index} is malformed: a record is a msgpack array "
            "[kind, run_id, seq, ...] with an int kind"
        )
    if fields[1] != run_id:
        raise InvalidRecord(
            f"record #{index} belongs to run {fields[1]!r}, not to this batch's "
            f"run {run_id!r}; send one batch per run"
        )
    seq = fields[2]
    if type(seq) is not int or not last < seq <= INT64_MAX:
        raise InvalidRecord(
            f"record #{index} has seq {seq!r} after seq {last}; seqs must be ints from 1 "
            "to 2**63-1, in increasing order"
        )
    return seq


def _check_record(fields: list[Any], encoded: dict[int, Encoded]) -> tuple[Any, str | None]:
    """The record and ``None``, or what is wrong with it; a History's values go in ``encoded``."""
    if plain_history(fields):  # the common row: nothing to walk, nothing to encode
        return p.History(*fields), None
    try:
        record: Any = p.from_fields(fields)
    except p.DecodeError as exc:
        return None, f"{exc}; {_STORED}"
    if record.kind not in p.STORED_KINDS:
        name = p.KIND_NAMES[record.kind]
        return None, f"{name} (kind {record.kind}) is a control message, never stored; {_STORED}"
    problem = record_problem(record)
    if problem is None and record.kind == p.HISTORY:
        try:
            composite = _encode_composites(record.data)
        except InvalidRecord as exc:
            problem = f"History {exc.message}"
        else:
            if composite:
                encoded[record.seq] = composite
    return record, problem


def _encode_composites(data: dict[str, Any]) -> dict[str, StoredValue]:
    """The stored form of a History's list and map values (JSON, which may be too big)."""
    kinds = set(map(type, data.values()))
    if list not in kinds and dict not in kinds:  # most rows: no need to look at each value
        return {}
    return {k: encode_value(k, v) for k, v in data.items() if type(v) is list or type(v) is dict}


def apply_batch(db: Database, principal: Principal, batch: Batch) -> Outcome:
    """Apply the batch's valid records and keep its refused ones, in one transaction."""
    start = next((r.start_time for r in batch.records if r.kind == p.RUN_START), None)
    with db.write() as conn:
        entity = entity_for(conn, principal, batch.entity)
        db.insert_ignore(
            conn,
            s.projects,
            {"entity_id": entity.id, "name": batch.project, "created_at": time.time()},
        )
        project = _runs.project_id(conn, entity, batch.project)
        assert project is not None
        run = _lock_run(db, conn, project, batch.run_id, start, principal.name)
        writer = _writers.lock(db, conn, run.id, batch.writer) if batch.writer else None
        last_seq = int(writer.last_seq if writer is not None else run.last_seq)
        fresh = [
            r.after(last_seq) if r.kind == COLUMNS else r for r in batch.records if r.seq > last_seq
        ]
        refused = [(seq, reason) for seq, reason in batch.rejected if seq > last_seq]
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        applier = _Applier(conn, db, run, batch.encoded, writer)
        if fresh:
            values.update(applier.apply(fresh))
        if refused:
            _rejections.store(conn, db.is_sqlite, run.id, refused)
        if batch.last_seq > last_seq:
            last_seq = batch.last_seq
            target = values if writer is None else applier.writer_values
            target["last_seq"] = last_seq
        conn.execute(update(s.runs).where(s.runs.c.id == run.id).values(**values))
        if writer is not None:
            applier.writer_values["heartbeat_at"] = values["heartbeat_at"]
            _writers.save(conn, run.id, batch.writer, applier.writer_values)
        return Outcome(last_seq, refused)


def _lock_run(
    db: Database, conn: Connection, project: int, run_id: str, start: float | None, user: str
) -> Row[Any]:
    db.insert_ignore(conn, s.runs, _runs.new_run_values(project, run_id, start, user))
    query = select(s.runs).where(s.runs.c.project_id == project, s.runs.c.run_id == run_id)
    row = conn.execute(query.with_for_update()).first()
    assert row is not None
    return row


class _Applier:
    """Folds fresh, checked records into column values and history rows for one run."""

    def __init__(
        self,
        conn: Connection,
        db: Database,
        run: Row[Any],
        encoded: dict[int, Encoded],
        writer: Row[Any] | None = None,
    ) -> None:
        self.conn, self.db, self.run, self.encoded = conn, db, run, encoded
        self.values: dict[str, Any] = {}
        self.points = BatchPoints()  # this batch's history, in seq order
        self.writer = writer  # a labelled writer's row; None: the run's unlabelled writer
        self.writer_values: dict[str, Any] = {}
        self.primary = writer is None or bool(writer.is_primary)
        self.writer_step: int | None = None if writer is None else writer.last_step
        self.outputs: list[p.Output] = []  # console lines
        self.system: list[p.SystemStats] = []  # system metrics, on their own axis
        self.config: dict[str, Any] | None = None
        self.summary = load_state(run.summary_state)
        self.summary_changed = False
        self.last_step: int | None = run.last_step

    def apply(self, records: list[Any]) -> dict[str, Any]:
        handlers: dict[int, Callable[[Any], None]] = {
            p.RUN_START: self._run_start,
            p.HISTORY: self._history,
            p.CONFIG: self._config,
            p.SUMMARY: self._summary,
            p.METRIC: self._metric,
            p.FINISH: self._finish,
            p.RUN_UPDATE: self._run_update,
            p.FILE: _run_blobs.store_saved_one(self.db, self.conn, self.run.id),
            COLUMNS: self._columns,
            p.OUTPUT: self.outputs.append,
            p.SYSTEM_STATS: self.system.append,
        }
        for record in records:
            handlers[record.kind](record)
        _rich_values.store(self.db, self.conn, self.run.id, records, self.encoded)
        if self.points:
            self._write_history(self.points)
        if self.outputs:
            label = "" if self.writer is None else str(self.writer.writer)
            _console.store(self.conn, self.run.id, self.outputs, label)
        if self.system:
            system = BatchPoints()
            for row in _system_stats.as_rows(self.conn, self.run.id, self.system):
                system.add_row(row)
            self._write_history(system)
        kinds = {r.kind for r in records}
        if self.primary and self.run.state == "crashed" and p.FINISH not in kinds:
            self.values["state"] = "running"  # the run came back after being marked crashed
        if self._writer_came_back():
            self.writer_values["state"] = "running"  # the reaper marked it crashed meanwhile
        if self.writer is not None and self.writer_step != self.writer.last_step:
            self.writer_values["last_step"] = self.writer_step
        return self._finish_values()

    def _writer_came_back(self) -> bool:
        w = self.writer
        reaped = w is not None and w.state == "crashed" and w.finished_at is None
        return reaped and "state" not in self.writer_values  # no RunStart or Finish here

    def _finish_values(self) -> dict[str, Any]:
        values = dict(self.values, last_step=self.last_step)
        if self.config is not None:
            values["config"] = msgpack.packb(self.config, use_bin_type=True)
            values["config_json"] = _run_json.to_json_text(self.config)
        if self.summary_changed:
            summary = self.summary.to_dict()
            values["summary"] = msgpack.packb(summary, use_bin_type=True)
            values["summary_json"] = _run_json.to_json_text(summary)
            values["summary_state"] = dump_state(self.summary)
        return values

    def _merge_config(self, data: dict[str, Any]) -> None:
        if self.config is None:
            self.config = _runs.unpack(self.run.config)
        self.config.update(data)

    def _run_start(self, r: p.RunStart) -> None:
        if self.writer is not None:
            self.primary = bool(r.primary)
            self.writer_values.update(
                is_primary=self.primary,
                state="running",
                host=r.host,
                pid=r.pid,
                started_at=r.start_time,
                finished_at=None,
                exit_code=None,
            )
        if not self.primary:  # a secondary writer adds its config; the run stays the primary's
            self._merge_config(r.config or {})
            return
        self.values.update(
            name=r.name or self.run.run_id,
            run_group=r.group,
            job_type=r.job_type,
            tags=json.dumps(r.tags or []),
            notes=r.notes,
            host=r.host,
            program=r.program,
            git_commit=r.git_commit,
            state="running",
            finished_at=None,
            exit_code=None,
        )
        if r.environment:
            self.values["environment"] = _run_json.to_json_text(r.environment)
        self._merge_config(r.config or {})

    def _run_update(self, r: p.RunUpdate) -> None:
        for key, value in r.data.items():
            if key == "tags":
                self.values["tags"] = json.dumps(value)
            else:  # an empty name falls back to the run id, as at RunStart
                column = _COLUMNS_UPDATED[key]
                self.values[column] = value or (self.run.run_id if key == "name" else None)

    def _history(self, r: p.History) -> None:
        self.points.add_row(r)
        self.summary.observe(r.data)
        self.summary_changed = True
        if self.last_step is None or r.step > self.last_step:
            self.last_step = r.step
        if self.writer is not None and (self.writer_step is None or r.step > self.writer_step):
            self.writer_step = r.step

    def _columns(self, r: HistoryColumns) -> None:
        self.points.add_columns(r)
        for column in r.rows.keys:
            if self.summary.wants_every_value(column.key):
                self.summary.observe_series(column.key, column.python_values())
            else:  # only the last value counts
                self.summary.observe_series(column.key, [column.last_value()])
        self.summary_changed = True
        top = int(r.rows.step.max())
        if self.last_step is None or top > self.last_step:
            self.last_step = top
        if self.writer is not None and (self.writer_step is None or top > self.writer_step):
            self.writer_step = top

    def _write_history(self, points: BatchPoints) -> None:
        """The batch's points, key by key, appended to (or merged into) the key's blocks."""
        tails = self._key_tails()
        writer = BlockWriter(self.conn, self.run.id)
        for key, series in points.by_key().items():
            tail = tails.get(key) or KeyTail(self._new_key(key))
            writer.add(tail, series)
        writer.flush()

    def _key_tails(self) -> dict[str, KeyTail]:
        k = s.run_keys.c
        rows = self.conn.execute(
            select(k.key, k.id, k.last_step, k.tail_start, k.tail_n).where(k.run_pk == self.run.id)
        )
        return {
            key: KeyTail(int(key_id), last, start, int(n or 0))
            for key, key_id, last, start, n in rows
        }

    def _new_key(self, key: str) -> int:
        self.db.insert_ignore(self.conn, s.run_keys, {"run_pk": self.run.id, "key": key})
        key_id = self.conn.execute(
            select(s.run_keys.c.id).where(
                s.run_keys.c.run_pk == self.run.id, s.run_keys.c.key == key
            )
        ).scalar_one()
        return int(key_id)

    def _config(self, r: p.Config) -> None:
        self._merge_config(r.data)

    def _summary(self, r: p.Summary) -> None:
        self.summary.set_explicit(r.data)
        self.summary_changed = True

    def _metric(self, r: p.Metric) -> None:
        modes = parse_summary_modes(r.summary)
        self.summary.define(MetricDef(r.name, r.step_metric, modes, r.goal))
        self.summary_changed = True

    def _finish(self, r: p.Finish) -> None:
        finished_at = float(r.time) if r.time is not None else time.time()
        ended = {"state": r.state, "exit_code": r.exit_code, "finished_at": finished_at}
        if self.writer is not None:
            self.writer_values.update(ended)
        if self.primary:
            self.values.update(ended)
