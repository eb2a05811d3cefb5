"""Blobs through a run: ``HEAD|PUT|GET .../blobs/{sha256}``, saved-file pointers, media.

- ``HEAD`` answers 200 if the run holds the blob (its upload can be skipped), else 404;
- ``PUT`` takes the raw bytes (streamed, at most 1 GiB), checks that they hash to the name
  (400 otherwise), stores them once for the whole server and links the blob to the run
  (creating the run if its first batch has not arrived yet);
- ``GET`` streams the blob, only to a key that may read the run and only if the run holds
  it: a hash alone never opens another run's file;
- ``PUT .../saved-files/{name}`` with ``{"sha256", "size"}`` points a saved file at a blob
  the run holds (the daemon re-uploading a live file; idempotent);
- ``GET .../media?keys=&min_step=&max_step=`` returns rich values by key and step.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from . import _rich_values, _run_blobs, _runs
from . import _schema as s
from ._auth import Principal, entity_for
from ._blob_store import BlobStore, check_sha256
from ._history import HistoryQuery
from ._http import Caller, app_state, member_entity, respond
from ._record_rules import file_name_problem
from .errors import BadRequest

router = APIRouter(tags=["blobs"])
_RUN = "/runs/{entity}/{project}/{run_id}"
_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def blob_store(request: Request) -> BlobStore:
    """The server's blob store (see the ``files`` setting)."""
    return app_state(request).store


def _run_pk(request: Request, principal: Principal, entity: str, project: str, run_id: str) -> int:
    ent = member_entity(request, principal, entity)
    with app_state(request).db.read() as conn:
        return int(_runs.get_run(conn, ent, project, run_id).id)


def _link(
    request: Request, principal: Principal, path: tuple[str, str, str], sha256: str, size: int
) -> None:
    """Link the blob to the run at ``path`` (entity, project, run id), creating the run (as
    ingest would) if no batch of it has arrived yet: a blob may come before its row."""
    db = app_state(request).db
    entity, project, run_id = path
    project, run_id = _runs.ensure_project(project), _runs.check_run_id(run_id)
    with db.write() as conn:
        ent = entity_for(conn, principal, entity)
        row = {"entity_id": ent.id, "name": project, "created_at": time.time()}
        db.insert_ignore(conn, s.projects, row)
        pid = _runs.project_id(conn, ent, project)
        assert pid is not None
        db.insert_ignore(conn, s.runs, _runs.new_run_values(pid, run_id, None, principal.name))
        run_pk = int(_runs.get_run(conn, ent, project, run_id).id)
        _run_blobs.link(db, conn, run_pk, sha256, size)


@router.head(_RUN + "/blobs/{sha256}", summary="Whether the run holds a blob (200) or not (404)")
def has_blob(
    request: Request, entity: str, project: str, run_id: str, sha256: str, principal: Caller
) -> Response:
    check_sha256(sha256)
    ent = member_entity(request, principal, entity)
    with app_state(request).db.read() as conn:
        row = _runs.find_run(conn, ent, project, run_id)
        size = None if row is None else _run_blobs.linked_size(conn, row.id, sha256)
    if size is None or not blob_store(request).exists(sha256):
        return Response(status_code=404)
    return Response(status_code=200, headers={"content-length": str(size)})


@router.put(
    _RUN + "/blobs/{sha256}",
    summary="Upload a blob (the raw body; its SHA-256 must be the name)",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}}},
)
async def put_blob(
    request: Request, entity: str, project: str, run_id: str, sha256: str, principal: Caller
) -> Response:
    check_sha256(sha256)
    member_entity(request, principal, entity)  # before a byte of the body is read
    _sha, size = await blob_store(request).put(request.stream(), sha256)
    path = (entity, project, run_id)
    await run_in_threadpool(_link, request, principal, path, sha256, size)
    return respond(request, {"sha256": sha256, "size": size})


@router.get(_RUN + "/blobs/{sha256}", summary="Download a blob the run holds")
def get_blob(
    request: Request, entity: str, project: str, run_id: str, sha256: str, principal: Caller
) -> StreamingResponse:
    check_sha256(sha256)
    run_pk = _run_pk(request, principal, entity, project, run_id)
    with app_state(request).db.read() as conn:
        size = _run_blobs.require_linked(conn, run_pk, sha256)
    return stream_blob(request, sha256, size)


def stream_blob(request: Request, sha256: str, size: int) -> StreamingResponse:
    """The blob as a streamed response, typed by its first bytes."""
    chunks = blob_store(request).read(sha256)
    first = next(chunks, b"")
    kind = next((t for magic, t in _MAGIC if first.startswith(magic)), "application/octet-stream")
    body: Iterator[bytes] = itertools.chain([first], chunks)
    return StreamingResponse(body, media_type=kind, headers={"content-length": str(size)})


@router.put(_RUN + "/saved-files/{name:path}", summary="Point a saved file at a blob of the run")
def point_saved_file(
    request: Request,
    entity: str,
    project: str,
    run_id: str,
    name: str,
    principal: Caller,
    doc: Annotated[dict[str, Any], Body(description='{"sha256": hex, "size": n}')],
) -> Response:
    problem = file_name_problem(name)
    if problem is not None:
        raise BadRequest(f"saved file {problem}")
    sha256 = check_sha256(str(doc.get("sha256", "")))
    run_pk = _run_pk(request, principal, entity, project, run_id)
    db = app_state(request).db
    with db.write() as conn:
        size = _run_blobs.require_linked(conn, run_pk, sha256)
        _run_blobs.point(db, conn, run_pk, name, sha256, size)
    return respond(request, {"name": name, "sha256": sha256, "size": size})


@router.get(_RUN + "/media", summary="A run's images, histograms and tables by key and step")
def run_media(
    request: Request,
    entity: str,
    project: str,
    run_id: str,
    principal: Caller,
    keys: Annotated[str | None, Query(description="comma-separated keys")] = None,
    min_step: int | None = None,
    max_step: int | None = None,
) -> Response:
    query = HistoryQuery.from_params(keys, min_step, max_step, None)
    run_pk = _run_pk(request, principal, entity, project, run_id)
    url = f"/api/v1/runs/{entity}/{project}/{run_id}/blobs"
    with app_state(request).db.read() as conn:
        found = _rich_values.read(conn, run_pk, query.keys, query.min_step, query.max_step, url)
    return respond(request, {"media": found})
