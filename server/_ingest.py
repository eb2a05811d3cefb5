"""Applying an ingest batch: msgpack records in, one transaction, each ``seq`` at most once.

A batch is a msgpack map ``{"entity", "project", "run_id", "records"}`` whose records are
the arrays :mod:`trackd._protocol` encodes, in increasing ``seq`` order. The run is locked,
every record with ``seq <= last_seq`` is skipped (so a retried batch changes nothing), the
rest are applied, and ``last_seq`` moves to the last one, all in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from sqlalchemy import Connection, Row, select, update
from trackd._wire import records as p
from trackd._wire.ingest import decode_body
from trackd._wire.summary import dump_state, load_state

from . import _runs, _summaries
from . import _schema as s
from ._auth import Principal, entity_for
from ._db import Database
from ._values import K_FLOAT, check_key, encode_value
from .errors import BadRequest, InvalidRecord

FINISH_STATES = frozenset({"finished", "failed", "crashed"})


@dataclass(frozen=True, slots=True)
class Batch:
    entity: str | None
    project: str
    run_id: str
    records: list[Any]


def parse_batch(body: bytes) -> Batch:
    """The batch in a request body, or :class:`InvalidRecord` saying what is wrong."""
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
    return Batch(entity, project, run_id, _decode_records(run_id, doc.records))


def _decode_records(run_id: str, raw: list[Any]) -> list[Any]:
    records: list[Any] = []
    last = 0
    for index, fields in enumerate(raw):
        try:
            record = p.from_fields(fields)
        except p.DecodeError as exc:
            raise InvalidRecord(f"record #{index} is malformed: {exc}") from exc
        if record.kind not in p.STORED_KINDS:
            raise InvalidRecord(
                f"record #{index} is a {p.KIND_NAMES[record.kind]} (kind {record.kind}), which is "
                "never stored; send only RunStart, History, Config, Summary, Metric, Finish, RunUpdate"
            )
        if record.run_id != run_id:
            raise InvalidRecord(
                f"record #{index} belongs to run {record.run_id!r}, not to this batch's "
                f"run {run_id!r}; send one batch per run"
            )
        if type(record.seq) is not int or record.seq <= last:
            raise InvalidRecord(
                f"record #{index} has seq {record.seq!r} after seq {last}; seqs must be "
                "positive ints in increasing order"
            )
        last = record.seq
        records.append(record)
    return records


def apply_batch(db: Database, principal: Principal, batch: Batch) -> int:
    """Apply ``batch`` in one transaction; returns the run's ``last_seq`` after commit."""
    start = next((r.start_time for r in batch.records if r.kind == p.RUN_START), None)
    if start is not None and not isinstance(start, (int, float)):
        raise InvalidRecord(f"RunStart record: start_time {start!r} must be a number")
    with db.write() as conn:
        entity = entity_for(conn, principal, batch.entity)
        db.insert_ignore(
            conn,
            s.projects,
            {"entity_id": entity.id, "name": batch.project, "created_at": time.time()},
        )
        project = _runs.project_id(conn, entity, batch.project)
        assert project is not None
        run = _lock_run(db, conn, project, batch.run_id, start)
        fresh = [r for r in batch.records if r.seq > run.last_seq]
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if fresh:
            values.update(_Applier(conn, db, run).apply(fresh))
        conn.execute(update(s.runs).where(s.runs.c.id == run.id).values(**values))
        return int(values.get("last_seq", run.last_seq))


def _lock_run(
    db: Database, conn: Connection, project: int, run_id: str, start: float | None
) -> Row[Any]:
    db.insert_ignore(conn, s.runs, _runs.new_run_values(project, run_id, start))
    query = select(s.runs).where(s.runs.c.project_id == project, s.runs.c.run_id == run_id)
    row = conn.execute(query.with_for_update()).first()
    assert row is not None
    return row


_UPSERT = (
    " ON CONFLICT (run_pk, key_id, step) DO UPDATE SET "
    "time = excluded.time, kind = excluded.kind, num = excluded.num, "
    "ival = excluded.ival, text = excluded.text"
)
_COLUMNS = "INSERT INTO history (run_pk, key_id, step, time, kind, num, ival, text) "
_SQLITE_HISTORY = _COLUMNS + "VALUES (?, ?, ?, ?, ?, ?, ?, ?)" + _UPSERT
# PostgreSQL: one statement per chunk, the columns sent as arrays (far fewer round trips)
_PG_HISTORY = (
    _COLUMNS + "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], "
    "%s::smallint[], %s::float8[], %s::bigint[], %s::text[])" + _UPSERT
)
_PG_CHUNK = 50_000


def write_history(db: Database, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert history rows; a (key, step) written again keeps the last value."""
    if db.is_sqlite:
        conn.exec_driver_sql(_SQLITE_HISTORY, rows)
        return
    # one statement may not touch a row twice, so keep the last row per (key, step)
    unique = list({(r[1], r[2]): r for r in rows}.values())
    for start in range(0, len(unique), _PG_CHUNK):
        columns = tuple(list(col) for col in zip(*unique[start : start + _PG_CHUNK], strict=True))
        conn.exec_driver_sql(_PG_HISTORY, columns)


class _Applier:
    """Folds fresh records into column values and history rows for one run."""

    def __init__(self, conn: Connection, db: Database, run: Row[Any]) -> None:
        self.conn, self.db, self.run = conn, db, run
        self.values: dict[str, Any] = {}
        self.rows: list[tuple[Any, ...]] = []
        self.key_ids: dict[str, int] | None = None
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
        }
        for record in records:
            handlers[record.kind](record)
        if self.rows:
            write_history(self.db, self.conn, self.rows)
        kinds = {r.kind for r in records}
        if self.run.state == "crashed" and p.FINISH not in kinds:
            self.values["state"] = "running"  # the run came back after being marked crashed
        return self._finish_values(records[-1].seq)

    def _finish_values(self, last_seq: int) -> dict[str, Any]:
        values = dict(self.values, last_seq=last_seq, last_step=self.last_step)
        if self.config is not None:
            values["config"] = msgpack.packb(self.config, use_bin_type=True)
        if self.summary_changed:
            values["summary"] = msgpack.packb(self.summary.to_dict(), use_bin_type=True)
            values["summary_state"] = dump_state(self.summary)
        return values

    def _merge_config(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise InvalidRecord(f"{what}: config must be a map, got {type(data).__name__}")
        if self.config is None:
            self.config = _runs.unpack(self.run.config)
        self.config.update(data)

    def _run_start(self, r: p.RunStart) -> None:
        tags = r.tags or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidRecord(f"RunStart record seq {r.seq}: tags must be a list of str")
        for field in ("name", "group", "job_type", "notes", "host", "program", "git_commit"):
            value = getattr(r, field)
            if value is not None and not isinstance(value, str):
                raise InvalidRecord(f"RunStart record seq {r.seq}: {field} must be a str")
        self.values.update(
            name=r.name or self.run.run_id,
            run_group=r.group,
            job_type=r.job_type,
            tags=json.dumps(tags),
            notes=r.notes,
            host=r.host,
            program=r.program,
            git_commit=r.git_commit,
            state="running",
            finished_at=None,
            exit_code=None,
        )
        self._merge_config(r.config or {}, f"RunStart record seq {r.seq}")

    def _run_update(self, r: p.RunUpdate) -> None:
        if not isinstance(r.data, dict):
            raise InvalidRecord(f"RunUpdate record seq {r.seq}: data must be a map")
        columns = {"name": "name", "notes": "notes", "group": "run_group", "job_type": "job_type"}
        for key, value in r.data.items():
            if key == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise InvalidRecord(f"RunUpdate record seq {r.seq}: tags must be a list of str")
                self.values["tags"] = json.dumps(value)
            elif key in columns:
                if value is not None and not isinstance(value, str):
                    raise InvalidRecord(f"RunUpdate record seq {r.seq}: {key} must be a str")
                self.values[columns[key]] = value or (self.run.run_id if key == "name" else None)
            else:
                raise InvalidRecord(
                    f"RunUpdate record seq {r.seq}: {key!r} is not one of "
                    f"{', '.join(p.UPDATABLE_FIELDS)}"
                )

    def _load_key_ids(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(s.run_keys.c.key, s.run_keys.c.id).where(s.run_keys.c.run_pk == self.run.id)
        )
        return {key: int(key_id) for key, key_id in rows}

    def _new_key(self, key: str) -> int:
        check_key(key)
        assert self.key_ids is not None
        self.db.insert_ignore(self.conn, s.run_keys, {"run_pk": self.run.id, "key": key})
        key_id = self.conn.execute(
            select(s.run_keys.c.id).where(
                s.run_keys.c.run_pk == self.run.id, s.run_keys.c.key == key
            )
        ).scalar_one()
        self.key_ids[key] = int(key_id)
        return int(key_id)

    def _history(self, r: p.History) -> None:
        step, t, data = r.step, r.time, r.data
        if type(step) is not int or type(t) not in (float, int) or type(data) is not dict:
            raise InvalidRecord(
                f"History record seq {r.seq}: step must be an int, time a number and data "
                f"a map; got step {step!r}, time {t!r}, data {type(data).__name__}"
            )
        if self.key_ids is None:
            self.key_ids = self._load_key_ids()
        ids, rows, run_pk = self.key_ids, self.rows, self.run.id
        for key, value in data.items():
            key_id = ids.get(key)
            if key_id is None:
                key_id = self._new_key(key)
            if type(value) is float and value - value == 0.0:
                rows.append((run_pk, key_id, step, t, K_FLOAT, value, None, None))
            else:
                rows.append((run_pk, key_id, step, t, *encode_value(key, value)))
        self.summary.observe(data)
        self.summary_changed = True
        if self.last_step is None or step > self.last_step:
            self.last_step = step

    def _config(self, r: p.Config) -> None:
        self._merge_config(r.data, f"Config record seq {r.seq}")

    def _summary(self, r: p.Summary) -> None:
        if not isinstance(r.data, dict):
            raise InvalidRecord(f"Summary record seq {r.seq}: data must be a map")
        self.summary.set_explicit(r.data)
        self.summary_changed = True

    def _metric(self, r: p.Metric) -> None:
        self.summary.define(_summaries.metric_def(r.name, r.step_metric, r.summary, r.goal))
        self.summary_changed = True

    def _finish(self, r: p.Finish) -> None:
        if r.state not in FINISH_STATES:
            raise InvalidRecord(
                f"Finish record seq {r.seq}: state {r.state!r} is not one of "
                f"{sorted(FINISH_STATES)}"
            )
        if r.exit_code is not None and type(r.exit_code) is not int:
            raise InvalidRecord(f"Finish record seq {r.seq}: exit_code must be an int or nil")
        finished_at = r.time if isinstance(r.time, (int, float)) else time.time()
        self.values.update(state=r.state, exit_code=r.exit_code, finished_at=finished_at)
