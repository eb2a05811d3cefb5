"""Admin-only account management: users, keys, teams and memberships."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from . import _accounts
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


@router.post("/users/{user}/keys", status_code=201, summary="A new API key for a user")
def create_key(request: Request, user: str, principal: Caller) -> Response:
    require_admin(principal)
    with app_state(request).db.write() as conn:
        key = _accounts.create_key(conn, user)
    return respond(request, {"name": user, "api_key": key}, 201)


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
