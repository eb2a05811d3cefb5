"""Admin-only account management: users, keys, teams and memberships."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from . import _accounts, _keys
from ._api_keys import NewKey, created
from ._auth import require_admin
from ._http import Caller, app_state, respond

router = APIRouter(prefix="/admin", tags=["admin"])


class NewUser(BaseModel):
    name: str
    admin: bool = False


class NewTeam(BaseModel):
    name: str


class NewMember(BaseModel):
    user: str


@router.post("/users", status_code=201, summary="Create a user; its API key is shown once")
def create_user(request: Request, body: NewUser, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        key = _accounts.create_user(conn, body.name, admin=body.admin)
    return respond(request, {"name": body.name, "admin": body.admin, "api_key": key}, 201)


@router.delete("/users/{user}", summary="Remove a user, their keys and memberships")
def remove_user(request: Request, user: str, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        _accounts.remove_user(conn, user)
    return respond(request, {"name": user, "removed": True})


@router.get("/users/{user}/keys", summary="A user's API keys (prefixes and states)")
def list_keys(request: Request, user: str, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.read() as conn:
        keys = _accounts.list_keys(conn, user)
    return respond(request, {"name": user, "keys": keys})


@router.post("/users/{user}/keys", status_code=201, summary="A new API key for a user")
def create_key(
    request: Request, user: str, principal: Caller, body: NewKey | None = None
) -> Response:
    require_admin(principal)
    body = body or NewKey()
    expires_at = _keys.expiry(body.expires_in_days, body.expires_at)
    with app_state(request).db.write() as conn:
        key = _accounts.create_key(conn, user, expires_at)
    return respond(request, created(user, key, expires_at), 201)


@router.delete("/keys/{prefix}", summary="Revoke any API key, named by its prefix")
def revoke_key(request: Request, prefix: str, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        revoked_at = _keys.revoke(conn, prefix)
    return respond(request, {"prefix": prefix, "revoked_at": revoked_at})


@router.post("/teams", status_code=201, summary="Create a team")
def create_team(request: Request, body: NewTeam, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        _accounts.create_team(conn, body.name)
    return respond(request, {"name": body.name}, 201)


@router.post("/teams/{team}/members", summary="Add a user to a team")
def add_member(request: Request, team: str, body: NewMember, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        _accounts.add_member(conn, team, body.user)
    return respond(request, {"team": team, "user": body.user})


@router.delete("/teams/{team}/members/{user}", summary="Remove a user from a team")
def remove_member(request: Request, team: str, user: str, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        _accounts.remove_member(conn, team, user)
    return respond(request, {"team": team, "user": user})
