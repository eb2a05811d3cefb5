"""Who is calling, and which entities they may use.

Every ``/api`` request carries ``Authorization: Bearer <key>``. A key acts for its user, who
may read and write the projects of their personal entity and of every team they belong to.
An entity the user may not use gets the same answer whether or not it exists, so a key
cannot probe for other users' or teams' names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, select

from . import _schema as s
from ._keys import hash_key, when
from .errors import Forbidden, Unauthorized

_GET_A_KEY = (
    "ask your trackd admin for one (python -m trackd.server --create-key USER), "
    "then send it as 'Authorization: Bearer <key>'"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The user an API key acts for."""

    user_id: int
    name: str
    is_admin: bool
    key_prefix: str


@dataclass(frozen=True, slots=True)
class Entity:
    id: int
    name: str


def authenticate(conn: Connection, authorization: str | None) -> Principal:
    """The user behind an ``Authorization`` header, or :class:`Unauthorized`."""
    if not authorization:
        raise Unauthorized(f"missing API key; {_GET_A_KEY}")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized(f"the Authorization header is not 'Bearer <key>'; {_GET_A_KEY}")
    k = s.api_keys.c
    row = conn.execute(
        select(s.users.c.id, s.users.c.name, s.users.c.is_admin, k.prefix)
        .add_columns(k.expires_at, k.revoked_at)
        .join(s.api_keys, k.user_id == s.users.c.id)
        .where(k.key_hash == hash_key(key))
    ).first()
    if row is None:
        raise Unauthorized(f"the API key is not valid; {_GET_A_KEY}")
    if row.revoked_at is not None:
        raise Unauthorized(
            f"the API key {row.prefix}... was revoked on {when(row.revoked_at)}; {_GET_A_KEY}"
        )
    if row.expires_at is not None and row.expires_at <= time.time():
        raise Unauthorized(
            f"the API key {row.prefix}... expired on {when(row.expires_at)}; {_GET_A_KEY}"
        )
    return Principal(int(row.id), row.name, bool(row.is_admin), row.prefix)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden(f"user {principal.name!r} is not an admin; use an admin API key")


def entity_for(conn: Connection, principal: Principal, name: str | None) -> Entity:
    """The entity ``name`` (the user's own for ``None``) if the user may use it."""
    name = principal.name if name is None else name
    row = conn.execute(
        select(s.entities.c.id)
        .join(s.members, s.members.c.entity_id == s.entities.c.id)
        .where(s.entities.c.name == name, s.members.c.user_id == principal.user_id)
    ).first()
    if row is None:
        raise Forbidden(f"entity {name!r} not found or you are not a member")
    return Entity(int(row.id), name)


def visible_entities(conn: Connection, principal: Principal) -> list[str]:
    """Names of the entities the user may use: their own first, then teams by name."""
    names = conn.execute(
        select(s.entities.c.name)
        .join(s.members, s.members.c.entity_id == s.entities.c.id)
        .where(s.members.c.user_id == principal.user_id)
        .order_by(s.entities.c.name)
    ).scalars()
    teams = [n for n in names if n != principal.name]
    return [principal.name, *teams]
