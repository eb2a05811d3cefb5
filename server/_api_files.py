"""Run files: upload (raw body), list, download."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from . import _files, _runs
from ._http import Caller, app_state, member_entity, respond

router = APIRouter(tags=["files"])
_RUN = "/runs/{entity}/{project}/{run_id}/files"


def _run_root(request: Request, principal: Caller, entity: str, project: str, run_id: str) -> Path:
    ent = member_entity(request, principal, entity)
    state = app_state(request)
    with state.db.read() as conn:
        row = _runs.get_run(conn, ent, project, run_id)
    return _files.run_dir(state.settings.data_dir, int(row.id))


@router.put(
    _RUN + "/{path:path}",
    summary="Upload a file (the raw request body)",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}}},
)
async def upload(
    request: Request, entity: str, project: str, run_id: str, path: str, principal: Caller
) -> Response:
    root = await run_in_threadpool(_run_root, request, principal, entity, project, run_id)
    return respond(request, await _files.save(root, path, request.stream()))


@router.get(_RUN, summary="List a run's files")
def list_files(
    request: Request, entity: str, project: str, run_id: str, principal: Caller
) -> Response:
    root = _run_root(request, principal, entity, project, run_id)
    return respond(request, {"files": _files.listing(root)})


@router.get(_RUN + "/{path:path}", summary="Download a file", response_class=FileResponse)
def download(
    request: Request, entity: str, project: str, run_id: str, path: str, principal: Caller
) -> FileResponse:
    root = _run_root(request, principal, entity, project, run_id)
    found = _files.find(root, path)
    return FileResponse(found, media_type="application/octet-stream")
