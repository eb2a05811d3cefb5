"""Run files: upload (raw body), list, download. A file uploaded here and a file saved with
``trackd.save`` are both a name pointing at an object in the blob store (see :mod:`._files`),
listed and downloaded (streamed from the store through the server) the same way."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from . import _files, _run_blobs, _runs
from ._api_blobs import stream_blob
from ._http import Caller, app_state, member_entity, respond

router = APIRouter(tags=["files"])
_RUN = "/runs/{entity}/{project}/{run_id}/files"


def _run_pk(request: Request, principal: Caller, entity: str, project: str, run_id: str) -> int:
    ent = member_entity(request, principal, entity)
    with app_state(request).db.read() as conn:
        return int(_runs.get_run(conn, ent, project, run_id).id)


@router.put(
    _RUN + "/{path:path}",
    summary="Upload a file (the raw request body)",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}}},
)
async def upload(
    request: Request, entity: str, project: str, run_id: str, path: str, principal: Caller
) -> Response:
    _files.check_name(path)
    run_pk = await run_in_threadpool(_run_pk, request, principal, entity, project, run_id)
    state = app_state(request)
    saved = await _files.save(state.db, state.store, run_pk, path, request.stream())
    return respond(request, saved)


@router.get(_RUN, summary="List a run's files")
def list_files(
    request: Request, entity: str, project: str, run_id: str, principal: Caller
) -> Response:
    run_pk = _run_pk(request, principal, entity, project, run_id)
    with app_state(request).db.read() as conn:
        files = _run_blobs.saved_files(conn, run_pk)
    return respond(request, {"files": files})


@router.get(_RUN + "/{path:path}", summary="Download a file", response_class=StreamingResponse)
def download(
    request: Request, entity: str, project: str, run_id: str, path: str, principal: Caller
) -> Response:
    _files.check_name(path)
    run_pk = _run_pk(request, principal, entity, project, run_id)
    with app_state(request).db.read() as conn:
        sha256, size = _files.find(conn, run_pk, path)
    return stream_blob(request, sha256, size)
