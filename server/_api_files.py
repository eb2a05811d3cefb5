"""Run files: upload (raw body), list, download; files saved with ``trackd.save`` (kept as
blobs, see :mod:`._run_blobs`) are listed and downloaded the same way."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
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


def _run_root(request: Request, principal: Caller, entity: str, project: str, run_id: str) -> Path:
    run_pk = _run_pk(request, principal, entity, project, run_id)
    return _files.run_dir(app_state(request).settings.data_dir, run_pk)


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
    run_pk = _run_pk(request, principal, entity, project, run_id)
    uploaded = _files.listing(_files.run_dir(app_state(request).settings.data_dir, run_pk))
    with app_state(request).db.read() as conn:
        saved = _run_blobs.saved_files(conn, run_pk)
    by_name = {f["name"]: f for f in uploaded} | {f["name"]: f for f in saved}
    return respond(request, {"files": [by_name[name] for name in sorted(by_name)]})


@router.get(_RUN + "/{path:path}", summary="Download a file", response_class=FileResponse)
def download(
    request: Request, entity: str, project: str, run_id: str, path: str, principal: Caller
) -> Response:
    run_pk = _run_pk(request, principal, entity, project, run_id)
    with app_state(request).db.read() as conn:
        sha256 = _run_blobs.saved_file(conn, run_pk, path)
        size = None if sha256 is None else _run_blobs.linked_size(conn, run_pk, sha256)
    if sha256 is not None and size is not None:
        return stream_blob(request, sha256, size)
    found = _files.find(_files.run_dir(app_state(request).settings.data_dir, run_pk), path)
    return FileResponse(found, media_type="application/octet-stream")
