"""``python -m trackd.server``: serve, or run one admin command on the database and exit.

python -m trackd.server --port 8080 --data-dir ~/.trackd-server
python -m trackd.server --db postgresql://trackd@db:5432/trackd
python -m trackd.server --create-user alice        # prints alice's API key once
python -m trackd.server --create-key alice --expires-in 90
python -m trackd.server --list-keys alice          # prefixes and states, never the keys
python -m trackd.server --revoke-key trk_AbCd1234
python -m trackd.server --create-team vision --add-member vision alice
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from sqlalchemy import Connection

from . import _accounts, _keys
from ._blob_store import BlobStore, open_store
from ._db import Database
from ._legacy_files import import_files
from ._migrations import migrate
from ._serve import serve
from ._settings import SETTINGS, Settings, load
from .errors import BadRequest, ServerError, StartupError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trackd.server", description=__doc__.split("\n")[0]
    )
    for name, default, env, help_text in SETTINGS:
        if name in ("admin_user", "admin_key"):
            continue  # environment only: a key on the command line leaks into `ps`
        kind = type(default) if default is not None else str
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=None,
            help=f"{help_text} (env {env}, default {default})",
        )
    admin = parser.add_argument_group("admin commands (act on the database, then exit)")
    admin.add_argument("--create-user", metavar="NAME", help="create a user; prints its API key")
    admin.add_argument("--admin", action="store_true", help="with --create-user: an admin")
    admin.add_argument("--create-key", metavar="USER", help="print a new API key for USER")
    admin.add_argument(
        "--expires-in", type=float, metavar="DAYS", help="with --create-key/--create-user"
    )
    admin.add_argument(
        "--expires-at", metavar="WHEN", help="with --create-key/--create-user: e.g. 2027-01-31"
    )
    admin.add_argument("--list-keys", metavar="USER", help="list USER's API key prefixes")
    admin.add_argument("--revoke-key", metavar="PREFIX", help="revoke the key with PREFIX")
    admin.add_argument("--remove-user", metavar="USER", help="remove USER and their keys")
    admin.add_argument("--create-team", metavar="TEAM", help="create a team")
    admin.add_argument("--add-member", nargs=2, metavar=("TEAM", "USER"))
    admin.add_argument("--remove-member", nargs=2, metavar=("TEAM", "USER"))
    return parser


def _show_key(user: str, key: str, expires_at: float | None) -> None:
    prefix = key[: _keys.PREFIX_CHARS]
    until = _keys.when(expires_at) if expires_at is not None else "never"
    print(f"trackd: new API key for {user!r}: prefix {prefix}, expires {until}")
    print(f"trackd: API key for {user!r} (shown once): {key}")  # last: scripts take it


def _expiry(args: argparse.Namespace) -> float | None:
    """The expiry asked for with --expires-in / --expires-at, or a :class:`StartupError`."""
    at = None
    if args.expires_at is not None:
        try:
            parsed = datetime.fromisoformat(args.expires_at)
        except ValueError as exc:
            raise StartupError(
                f"--expires-at {args.expires_at!r} is not a date; use e.g. 2027-01-31 or "
                "2027-01-31T12:00 (UTC unless it has an offset)"
            ) from exc
        at = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    try:
        return _keys.expiry(args.expires_in, at, names=("--expires-in", "--expires-at"))
    except BadRequest as exc:
        raise StartupError(exc.message) from exc


def _list_keys(conn: Connection, user: str) -> None:
    keys = _accounts.list_keys(conn, user)
    print(f"trackd: API keys of {user!r} ({len(keys)}):")
    for key in keys:
        until = _keys.when(key["expires_at"]) if key["expires_at"] is not None else "never"
        made = _keys.when(key["created_at"])
        print(f"  {key['prefix']:<14} {key['state']:<8} created {made}  expires {until}")


def _commands(args: argparse.Namespace, expires_at: float | None) -> list[Callable[..., None]]:
    """The admin commands asked for, in a fixed order, each taking a write connection."""
    todo: list[Callable[[Connection], None]] = []
    if args.create_user:
        name = args.create_user
        todo.append(
            lambda c: _show_key(
                name, _accounts.create_user(c, name, args.admin, expires_at=expires_at), expires_at
            )
        )
    if args.create_key:
        user = args.create_key
        todo.append(
            lambda c: _show_key(user, _accounts.create_key(c, user, expires_at), expires_at)
        )
    if args.list_keys:
        todo.append(lambda c: _list_keys(c, args.list_keys))
    if args.revoke_key:
        todo.append(lambda c: _revoked(args.revoke_key, _keys.revoke(c, args.revoke_key)))
    if args.remove_user:
        todo.append(lambda c: _removed(c, args.remove_user))
    if args.create_team:
        todo.append(lambda c: _team(c, args.create_team))
    if args.add_member:
        todo.append(lambda c: _member(c, args.add_member, add=True))
    if args.remove_member:
        todo.append(lambda c: _member(c, args.remove_member, add=False))
    return todo


def _revoked(prefix: str, at: float) -> None:
    print(f"trackd: API key {prefix} revoked ({_keys.when(at)})")


def _removed(conn: Connection, user: str) -> None:
    _accounts.remove_user(conn, user)
    print(f"trackd: removed user {user!r} with their keys and memberships (their runs are kept)")


def _team(conn: Connection, team: str) -> None:
    _accounts.create_team(conn, team)
    print(f"trackd: created team {team!r}")


def _member(conn: Connection, team_user: list[str], add: bool) -> None:
    team, user = team_user
    if add:
        _accounts.add_member(conn, team, user)
        print(f"trackd: added {user!r} to team {team!r}")
    else:
        _accounts.remove_member(conn, team, user)
        print(f"trackd: removed {user!r} from team {team!r}")


def _admin_commands(args: argparse.Namespace, db: Database) -> bool:
    """Run the admin commands given, if any, in one transaction; returns whether any ran."""
    expires_at = _expiry(args)
    todo = _commands(args, expires_at)
    if expires_at is not None and not (args.create_key or args.create_user):
        raise StartupError("--expires-in and --expires-at go with --create-key or --create-user")
    with db.write() as conn:
        for command in todo:
            command(conn)
    return bool(todo)


def _prepare(settings: Settings, store: BlobStore) -> Database:
    """Open and upgrade the database; create the admin user on first start; move an older
    server's run files into the blob store."""
    db = Database.open(settings.db, settings.data_dir)
    made: list[str | None] = []
    moved: list[int] = []

    def bootstrap() -> None:  # under the migration lock: two servers starting make one admin
        with db.write() as conn:
            made.append(_accounts.bootstrap(conn, settings.admin_user, settings.admin_key))
        moved.append(import_files(settings.data_dir, db, store))

    before, after = migrate(db.writer, then=bootstrap)
    if before != after:
        print(f"trackd: database schema upgraded from version {before} to {after}", flush=True)
    if moved[0]:
        print(f"trackd: moved {moved[0]} run files into {store.where}", flush=True)
    key = made[0]
    if key is not None and settings.admin_key is None:  # generated: the one chance to see it
        print(f"trackd: admin API key (shown once): {key}", flush=True)
    elif key is not None:  # given: its owner knows it; printed, it would leak into service logs
        print(
            f"trackd: admin user {settings.admin_user!r} created with the key from "
            "TRACKD_ADMIN_KEY",
            flush=True,
        )
    return db


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load({name: getattr(args, name, None) for name, *_ in SETTINGS})
        store = open_store(settings)
        db = _prepare(settings, store)
        try:
            if not _admin_commands(args, db):
                serve(settings, db, store)
        finally:
            db.close()
    except ServerError as exc:
        print(f"trackd: error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
