"""A caller's own API keys: list, create (optionally expiring), revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from . import _keys
from ._http import Caller, app_state, respond

router = APIRouter(prefix="/keys", tags=["keys"])


class NewKey(BaseModel):
    """When a new key expires: in ``expires_in_days``, at ``expires_at`` (Unix s), or never."""

    expires_in_days: float | None = None
    expires_at: float | None = None


def created(user: str, key: str, expires_at: float | None) -> dict[str, Any]:
    """The answer for a new key: its plaintext (shown once) and its prefix."""
    prefix = key[: _keys.PREFIX_CHARS]
    return {"name": user, "prefix": prefix, "api_key": key, "expires_at": expires_at}


@router.get("", summary="Your API keys (prefixes and states, never the keys)")
def list_keys(request: Request, principal: Caller) -> Response:
    with app_state(request).db.read() as conn:
        keys = _keys.listing(conn, principal.user_id, current=principal.key_prefix)
    return respond(request, {"keys": keys})


@router.post("", status_code=201, summary="A new API key for you; shown once")
def create_key(request: Request, principal: Caller, body: NewKey | None = None) -> Response:
    body = body or NewKey()
    expires_at = _keys.expiry(body.expires_in_days, body.expires_at)
    with app_state(request).db.write() as conn:
        key = _keys.add_key(conn, principal.user_id, expires_at=expires_at)
    return respond(request, created(principal.name, key, expires_at), 201)


@router.delete("/{prefix}", summary="Revoke one of your API keys, named by its prefix")
def revoke_key(request: Request, prefix: str, principal: Caller) -> Response:
    with app_state(request).db.write() as conn:
        revoked_at = _keys.revoke(conn, prefix, user_id=principal.user_id)
    return respond(request, {"prefix": prefix, "revoked_at": revoked_at})
