"""The ASGI app: routes under ``/api/v1``, ``/healthz``, and errors as JSON bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from trackd._wire.error_body import error_body

from . import (
    _api_admin,
    _api_blobs,
    _api_files,
    _api_history,
    _api_ingest,
    _api_keys,
    _api_read,
    _web,
)
from ._blob_store import BlobStore, open_store
from ._db import Database
from ._guard import Guard
from ._http import AppState
from ._migrations import LATEST
from ._reaper import Reaper
from ._settings import Settings
from .errors import ServerError

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status)


async def _server_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg')}")
    return _error(422, "invalid_request", "; ".join(problems) or "the request is not valid")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
    return _error(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), message)


def create_app(settings: Settings, db: Database, store: BlobStore | None = None) -> FastAPI:
    """The trackd server app for an open, migrated database; ``store`` holds the uploaded
    bytes (default: the one the ``files`` setting names)."""
    reaper = Reaper(db, settings.heartbeat_timeout)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        reaper.start()
        try:
            yield
        finally:
            reaper.stop()

    app = FastAPI(title="trackd server", version="1", lifespan=lifespan)
    app.state.trackd = AppState(db=db, settings=settings, store=store or open_store(settings))
    routers = (_api_ingest, _api_read, _api_history, _api_files, _api_blobs, _api_keys, _api_admin)
    for router in (module.router for module in routers):
        app.include_router(router, prefix="/api/v1")
    app.add_exception_handler(ServerError, _server_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # the guard answers unexpected errors itself (once logged, with Connection: close)
    app.add_middleware(Guard, settings=settings, db=db)

    @app.get("/healthz", tags=["health"], summary="Liveness; needs no API key")
    def healthz() -> dict[str, object]:
        return {"ok": True, "schema_version": LATEST}

    _web.mount(app)
    return app
