"""Users, their API keys, teams and memberships: creation, removal, first-start bootstrap.

Every user owns a personal entity named after them; a team is an entity with members. A key's
plaintext is returned once, to be shown once (see :mod:`._keys`). Removing a user removes
their keys and memberships; their personal entity and its runs are kept, so the name stays
taken.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from trackd._wire.limits import NAME_RULE, valid_name

from . import _keys
from . import _schema as s
from .errors import BadRequest, Conflict, NotFound, StartupError


def check_name(what: str, name: object) -> str:
    """``name`` if it is a valid user/team/project name, else a :class:`BadRequest`."""
    if not valid_name(name):
        raise BadRequest(f"{what} name {name!r} is not valid; use {NAME_RULE}")
    return name


def _entity_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(s.entities.c.id).where(s.entities.c.name == name)).scalar()


def _user_id(conn: Connection, name: str) -> int:
    user_id = conn.execute(select(s.users.c.id).where(s.users.c.name == name)).scalar()
    if user_id is None:
        raise NotFound(f"user {name!r} not found; create it with --create-user {name}")
    return int(user_id)


def _team_id(conn: Connection, name: str) -> int:
    row = conn.execute(
        select(s.entities.c.id, s.entities.c.kind).where(s.entities.c.name == name)
    ).first()
    if row is None or row.kind != "team":
        raise NotFound(f"team {name!r} not found; create it with --create-team {name}")
    return int(row.id)


def _insert_id(conn: Connection, stmt: Any) -> int:
    key = conn.execute(stmt).inserted_primary_key
    assert key is not None
    return int(key[0])


def create_user(
    conn: Connection,
    name: str,
    admin: bool = False,
    key: str | None = None,
    expires_at: float | None = None,
) -> str:
    """Create a user, its personal entity and a first API key; returns the key."""
    check_name("user", name)
    if _entity_id(conn, name) is not None:
        raise Conflict(f"the name {name!r} is already taken by a user or team; pick another")
    now = time.time()
    user_id = _insert_id(conn, insert(s.users).values(name=name, is_admin=admin, created_at=now))
    entity_id = _insert_id(conn, insert(s.entities).values(name=name, kind="user", created_at=now))
    conn.execute(insert(s.members).values(entity_id=entity_id, user_id=user_id))
    return _keys.add_key(conn, int(user_id), key, expires_at)


def create_key(conn: Connection, user: str, expires_at: float | None = None) -> str:
    """A new API key for an existing user; returns the plaintext."""
    return _keys.add_key(conn, _user_id(conn, user), expires_at=expires_at)


def list_keys(conn: Connection, user: str) -> list[dict[str, Any]]:
    """An existing user's keys (see :func:`._keys.listing`)."""
    return _keys.listing(conn, _user_id(conn, user))


def remove_user(conn: Connection, name: str) -> None:
    """Remove a user with their keys and memberships (not the only admin)."""
    user_id = _user_id(conn, name)
    u = s.users.c
    admins = conn.execute(select(u.id).where(u.is_admin.is_(True))).scalars().all()
    if admins == [user_id]:
        raise Conflict(f"user {name!r} is the only admin; create another admin first")
    conn.execute(delete(s.api_keys).where(s.api_keys.c.user_id == user_id))
    conn.execute(delete(s.members).where(s.members.c.user_id == user_id))
    conn.execute(delete(s.users).where(u.id == user_id))


def create_team(conn: Connection, name: str) -> None:
    check_name("team", name)
    if _entity_id(conn, name) is not None:
        raise Conflict(f"the name {name!r} is already taken by a user or team; pick another")
    conn.execute(insert(s.entities).values(name=name, kind="team", created_at=time.time()))


def add_member(conn: Connection, team: str, user: str) -> None:
    """Make ``user`` a member of ``team`` (a no-op if it already is)."""
    team_id, user_id = _team_id(conn, team), _user_id(conn, user)
    exists = conn.execute(
        select(func.count())
        .select_from(s.members)
        .where(s.members.c.entity_id == team_id, s.members.c.user_id == user_id)
    ).scalar()
    if not exists:
        conn.execute(insert(s.members).values(entity_id=team_id, user_id=user_id))


def remove_member(conn: Connection, team: str, user: str) -> None:
    team_id, user_id = _team_id(conn, team), _user_id(conn, user)
    conn.execute(
        delete(s.members).where(s.members.c.entity_id == team_id, s.members.c.user_id == user_id)
    )


def bootstrap(conn: Connection, admin_user: str, admin_key: str | None) -> str | None:
    """On an empty database, create the admin user; returns its key if one was made."""
    if conn.execute(select(func.count()).select_from(s.users)).scalar():
        return None
    if admin_key is not None and len(admin_key) < 20:
        raise StartupError(
            "TRACKD_ADMIN_KEY is too short to be safe; use at least 20 random characters "
            "or leave it unset to have a key generated"
        )
    try:
        return create_user(conn, admin_user, admin=True, key=admin_key)
    except BadRequest as exc:
        raise StartupError(f"TRACKD_ADMIN_USER: {exc.message}") from exc
