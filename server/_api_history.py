"""The bulk history route: many runs' and keys' series, downsampled, in JSON or binary."""

from __future__ import annotations

from typing import Annotated

import msgpack
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from . import _history_bulk, _runs
from ._http import Caller, app_state, member_entity, respond
from .errors import NotFound

router = APIRouter(tags=["read"])
COLUMNS = "application/vnd.trackd.columns+msgpack"


class BulkRequest(BaseModel):
    """Which series: ``runs`` x ``keys``, steps ``min_step``..``max_step`` (and after
    ``after_step``), about ``samples`` points each, x axis ``step``, ``time`` or a key."""

    runs: Annotated[list[str], Field(max_length=_history_bulk.MAX_RUNS)]
    keys: Annotated[list[str], Field(max_length=1000)]
    min_step: int | None = None
    max_step: int | None = None
    after_step: int | None = None
    samples: int | None = None
    x: str = "step"


@router.post(
    "/entities/{entity}/projects/{project}/history",
    summary="History of many runs and keys at once, downsampled (JSON, msgpack or columns)",
)
def bulk_history(
    request: Request, entity: str, project: str, body: BulkRequest, principal: Caller
) -> Response:
    ent = member_entity(request, principal, entity)
    query = _history_bulk.BulkQuery.from_body(
        body.runs, body.keys, body.min_step, body.max_step, body.after_step, body.samples, body.x
    )
    with app_state(request).db.read() as conn:
        pid = _runs.project_id(conn, ent, project)
        if pid is None:
            raise NotFound(f"project {project!r} not found in entity {ent.name!r}")
        binary = COLUMNS in request.headers.get("accept", "")
        answer = _history_bulk.read_bulk(conn, pid, query, binary)
    if binary:
        return Response(msgpack.packb(answer, use_bin_type=True), media_type=COLUMNS)
    return respond(request, answer)
