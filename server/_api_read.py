"""The read API: who am I, entities, projects, runs (with filters) and history."""

from __future__ import annotations

import importlib.metadata
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from . import _console, _history, _rejections, _run_query, _runs, _system_stats, _writers
from . import _schema as s
from ._auth import visible_entities
from ._http import Caller, app_state, member_entity, respond
from .errors import NotFound

router = APIRouter(tags=["read"])


def _server_identity(request: Request, admin: bool) -> dict[str, str]:
    """What the server is: its version; for an admin also its data dir and database kind."""
    try:
        version = importlib.metadata.version("trackd")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        version = "unknown"
    out = {"version": version}
    if admin:
        state = app_state(request)
        out["data_dir"] = str(state.settings.data_dir)
        out["database"] = "sqlite" if state.db.is_sqlite else "postgresql"
    return out


@router.get("/viewer", summary="The user behind the API key, and the server's identity")
def viewer(request: Request, principal: Caller) -> Response:
    with app_state(request).db.read() as conn:
        names = visible_entities(conn, principal)
    return respond(
        request,
        {
            "user": principal.name,
            "admin": principal.is_admin,
            "entities": names,
            "default_entity": principal.name,
            "server": _server_identity(request, principal.is_admin),
        },
    )


@router.get("/entities", summary="Entities the API key may use")
def entities(request: Request, principal: Caller) -> Response:
    with app_state(request).db.read() as conn:
        names = visible_entities(conn, principal)
        rows = conn.execute(
            select(s.entities.c.name, s.entities.c.kind).where(s.entities.c.name.in_(names))
        )
        kinds = {name: kind for name, kind in rows}
    return respond(request, {"entities": [{"name": n, "kind": kinds[n]} for n in names]})


@router.get("/entities/{entity}/projects", summary="An entity's projects")
def projects(request: Request, entity: str, principal: Caller) -> Response:
    ent = member_entity(request, principal, entity)
    p = s.projects.c
    with app_state(request).db.read() as conn:
        rows = conn.execute(
            select(p.name, p.created_at).where(p.entity_id == ent.id).order_by(p.name)
        )
        found = [{"name": name, "created_at": created} for name, created in rows]
    return respond(request, {"entity": ent.name, "projects": found})


@router.get(
    "/entities/{entity}/projects/{project}/runs",
    summary="A project's runs: filtered, sorted and paged by the database, with the total",
)
def runs(
    request: Request,
    entity: str,
    project: str,
    principal: Caller,
    filters: Annotated[str | None, Query(description="wandb-style JSON filter")] = None,
    order: Annotated[
        str | None, Query(description="e.g. -summary.loss, config.lr, created_at ('-': descending)")
    ] = None,
    limit: Annotated[int | None, Query(description="runs per page (all if absent)")] = None,
    offset: Annotated[int, Query(description="runs to skip")] = 0,
    search: Annotated[
        str | None, Query(description="runs whose name or id contains this (case ignored)")
    ] = None,
) -> Response:
    ent = member_entity(request, principal, entity)
    with app_state(request).db.read() as conn:
        pid = _runs.project_id(conn, ent, project)
        if pid is None:
            raise NotFound(f"project {project!r} not found in entity {ent.name!r}")
        page = _run_query.project_runs(conn, pid, filters, order, limit, offset, search)
    docs = [_runs.run_json(row, ent.name, project) for row in page.rows]
    return respond(request, {"runs": docs, "total": page.total, "offset": offset, "limit": limit})


@router.get(
    "/runs/{entity}/{project}/{run_id}",
    summary="One run, with the records ingest refused (rejected_records, rejected_count) and "
    "its system-metrics keys (system_keys)",
)
def run(request: Request, entity: str, project: str, run_id: str, principal: Caller) -> Response:
    ent = member_entity(request, principal, entity)
    with app_state(request).db.read() as conn:
        row = _runs.get_run(conn, ent, project, run_id)
        rejected = _rejections.for_run(conn, row.id)
        writers = _writers.for_run(conn, row.id)
        system_keys = _system_stats.keys_of(conn, row.id)
    doc = dict(
        _runs.run_json(row, ent.name, project),
        writers=writers,
        **rejected,
        system_keys=system_keys,
    )
    return respond(request, doc)


@router.get("/runs/{entity}/{project}/{run_id}/history", summary="A run's history")
def history(
    request: Request,
    entity: str,
    project: str,
    run_id: str,
    principal: Caller,
    keys: Annotated[str | None, Query(description="comma-separated keys")] = None,
    min_step: int | None = None,
    max_step: int | None = None,
    samples: Annotated[int | None, Query(description="about this many points per key")] = None,
) -> Response:
    ent = member_entity(request, principal, entity)
    query = _history.HistoryQuery.from_params(keys, min_step, max_step, samples)
    with app_state(request).db.read() as conn:
        row = _runs.get_run(conn, ent, project, run_id)
        if query.samples is not None:
            return respond(request, _history.sampled(conn, row.id, query))
        return respond(request, _history.rows(conn, row.id, query))


@router.get(
    "/runs/{entity}/{project}/{run_id}/logs",
    summary="What a run printed (stdout and stderr), line by line, after a line number",
)
def logs(
    request: Request,
    entity: str,
    project: str,
    run_id: str,
    principal: Caller,
    after: Annotated[
        int, Query(description="only lines numbered above this (0: from the start)")
    ] = 0,
    limit: Annotated[int | None, Query(description="at most this many lines (1..10000)")] = None,
) -> Response:
    ent = member_entity(request, principal, entity)
    with app_state(request).db.read() as conn:
        row = _runs.get_run(conn, ent, project, run_id)
        return respond(request, _console.read(conn, row.id, after, limit))
