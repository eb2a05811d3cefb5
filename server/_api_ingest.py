"""The write path the daemon uses: ``/init``, ``/ingest`` and ``/heartbeat``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy import update
from starlette.concurrency import run_in_threadpool
from trackd._wire.limits import WRITER_RULE, valid_writer

from . import _runs, _writers
from . import _schema as s
from ._http import Caller, app_state, member_entity, respond
from ._ingest import apply_batch, parse_batch
from .errors import BadRequest, RecordsRefused

router = APIRouter(tags=["ingest"])


class InitRequest(BaseModel):
    entity: str | None = None
    project: str
    run_id: str


class RunRef(BaseModel):
    entity: str | None = None
    project: str
    run_id: str


class Beat(RunRef):
    writer: str = ""  # the labelled writer of a shared run whose process is alive


@router.post("/init", summary="Authorize a run and return it if it exists (for resume)")
def init(request: Request, body: InitRequest, principal: Caller) -> Response:
    entity = member_entity(request, principal, body.entity)
    project = _runs.ensure_project(body.project)
    run_id = _runs.check_run_id(body.run_id)
    with app_state(request).db.read() as conn:
        row = _runs.find_run(conn, entity, project, run_id)
        writers = _writers.for_run(conn, row.id) if row is not None else []
    run = None if row is None else dict(_runs.run_json(row, entity.name, project), writers=writers)
    return respond(request, {"entity": entity.name, "project": project, "run": run})


@router.post(
    "/ingest",
    summary="Apply a msgpack batch of run records exactly once",
    openapi_extra={"requestBody": {"content": {"application/msgpack": {}}, "required": True}},
)
async def ingest(request: Request, principal: Caller) -> Response:
    state = app_state(request)
    body = await request.body()  # bounded and timed by the guard (TRACKD_SERVER_MAX_BODY_MB)

    def work() -> dict[str, Any]:
        batch = parse_batch(body)
        outcome = apply_batch(state.db, principal, batch)
        if outcome.rejected:  # the rest of the batch is committed; say what was refused
            raise RecordsRefused(outcome.durable_seq, outcome.rejected)
        return {"run_id": batch.run_id, "durable_seq": outcome.durable_seq}

    return respond(request, await run_in_threadpool(work))


@router.post("/heartbeat", summary="Tell the server a run's (or its writer's) process is alive")
def heartbeat(request: Request, body: Beat, principal: Caller) -> Response:
    entity = member_entity(request, principal, body.entity)
    if not valid_writer(body.writer):
        raise BadRequest(f"writer {body.writer!r} is not a writer label: {WRITER_RULE}")
    db = app_state(request).db
    with db.write() as conn:
        row = _runs.get_run(conn, entity, body.project, body.run_id)
        now = time.time()
        runs = update(s.runs).where(s.runs.c.id == row.id)
        conn.execute(runs.values(heartbeat_at=now))  # the run's row first, as ingest locks
        primary = not body.writer or _writers.beat(conn, row.id, body.writer, now)
        # a run the reaper marked crashed comes back with its primary; one its primary's
        # Finish ended does not
        revived = primary and row.state == "crashed" and row.finished_at is None
        state = "running" if revived else row.state
        if revived:
            conn.execute(runs.values(state=state))
    return respond(request, {"run_id": body.run_id, "state": state})
