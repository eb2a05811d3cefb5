"""API keys: made, listed, revoked, and checked for expiry and revocation.

A key is ``trk_`` followed by 40 URL-safe random characters. Only its SHA-256 hash is stored,
with its first 12 characters (e.g. ``trk_AbCd1234``) as a prefix that names it, not secret,
when it is listed or revoked (keys made before schema version 3 have 8-character prefixes).
A key may expire; a revoked key is kept, marked, so that a client still using it is told it
was revoked rather than that it is unknown.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from . import _schema as s
from .errors import BadRequest, Conflict, NotFound

KEY_PREFIX = "trk_"
PREFIX_CHARS = 12
MAX_DAYS = 36500.0


def new_api_key() -> str:
    """A fresh API key: ``trk_`` + 40 URL-safe characters (240 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def when(stamp: float) -> str:
    """``stamp`` (Unix seconds) as a UTC time people read, e.g. ``2026-11-25 04:20 UTC``."""
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def expiry(
    days: float | None,
    at: float | None,
    names: tuple[str, str] = ("expires_in_days", "expires_at"),
) -> float | None:
    """The expiry time for "in ``days`` days" or "at ``at``" (Unix seconds); ``None``: never.

    ``names`` are what the caller calls the two (API fields or command-line flags).
    """
    now = time.time()
    if days is not None and at is not None:
        raise BadRequest(f"give {names[0]} or {names[1]}, not both")
    if days is not None:
        if not (math.isfinite(days) and 0 < days <= MAX_DAYS):
            raise BadRequest(f"{names[0]} {days!r} must be more than 0 and at most {MAX_DAYS:g}")
        return now + days * 86400
    if at is not None and not (math.isfinite(at) and now < at <= now + MAX_DAYS * 86400):
        raise BadRequest(
            f"{names[1]} {at!r} must be a time in the future, within {MAX_DAYS:g} days"
        )
    return at


def add_key(
    conn: Connection, user_id: int, key: str | None = None, expires_at: float | None = None
) -> str:
    """Register a key (a new random one unless given) for ``user_id``; returns the plaintext."""
    key = key or _unused_key(conn)
    conn.execute(
        insert(s.api_keys).values(
            user_id=user_id,
            key_hash=hash_key(key),
            prefix=key[:PREFIX_CHARS],
            created_at=time.time(),
            expires_at=expires_at,
        )
    )
    return key


def _unused_key(conn: Connection) -> str:
    """A new key whose prefix no other key has, so the prefix names it alone."""
    while True:
        key = new_api_key()
        taken = conn.execute(
            select(func.count())
            .select_from(s.api_keys)
            .where(s.api_keys.c.prefix == key[:PREFIX_CHARS])
        ).scalar()
        if not taken:
            return key


def state(row: Any, now: float | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = time.time() if now is None else now
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def listing(conn: Connection, user_id: int, current: str | None = None) -> list[dict[str, Any]]:
    """A user's keys, oldest first, without secrets; ``current``: the prefix in use."""
    k = s.api_keys.c
    rows = conn.execute(
        select(k.prefix, k.created_at, k.expires_at, k.revoked_at)
        .where(k.user_id == user_id)
        .order_by(k.created_at, k.id)
    )
    return [
        {
            "prefix": row.prefix,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "revoked_at": row.revoked_at,
            "state": state(row),
            "current": row.prefix == current,
        }
        for row in rows
    ]


def revoke(conn: Connection, prefix: str, user_id: int | None = None) -> float:
    """Revoke the key named by ``prefix`` (only among ``user_id``'s keys if given)."""
    k = s.api_keys.c
    where = [k.prefix == prefix] + ([k.user_id == user_id] if user_id is not None else [])
    ids = list(conn.execute(select(k.id, k.revoked_at).where(*where)))
    if not ids:
        whose = "of yours " if user_id is not None else ""
        raise NotFound(f"no API key {whose}has the prefix {prefix!r}; list keys to see them")
    if len(ids) > 1:
        raise Conflict(
            f"{len(ids)} API keys have the prefix {prefix!r} (keys made before trackd used "
            "12-character prefixes); have each key's user revoke it (DELETE /api/v1/keys/...)"
        )
    now = time.time()
    if ids[0].revoked_at is not None:
        return float(ids[0].revoked_at)
    conn.execute(update(s.api_keys).where(k.id == ids[0].id).values(revoked_at=now))
    return now
