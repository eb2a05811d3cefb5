"""What every route shares: the app's state, the caller, and answering in JSON or msgpack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgpack
from fastapi import Depends, Header, Request, Response

from ._auth import Entity, Principal, entity_for
from ._blob_store import BlobStore
from ._db import Database
from ._guard import caller
from ._settings import Settings
from ._values import to_json

MSGPACK = "application/msgpack"


@dataclass(frozen=True, slots=True)
class AppState:
    db: Database
    settings: Settings
    store: BlobStore  # every uploaded byte: media, saved and uploaded run files


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.trackd
    return state


def respond(request: Request, payload: Any, status: int = 200) -> Response:
    """``payload`` as msgpack if the client accepts it (exact floats), else strict JSON."""
    if MSGPACK in request.headers.get("accept", ""):
        body = msgpack.packb(payload, use_bin_type=True)
        return Response(body, status_code=status, media_type=MSGPACK)
    return Response(to_json(payload), status_code=status, media_type="application/json")


def _principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Principal:
    # the guard checked the key before the body was read; the header is here for the docs
    return caller(request.scope)


Caller = Annotated[Principal, Depends(_principal)]


def member_entity(request: Request, principal: Principal, name: str | None) -> Entity:
    """The entity ``name`` if the caller may use it (403 otherwise)."""
    with app_state(request).db.read() as conn:
        return entity_for(conn, principal, name)
