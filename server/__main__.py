"""``python -m trackd.server``: serve, or run one admin command on the database and exit.

python -m trackd.server --port 8080 --data-dir ~/.trackd-server
python -m trackd.server --db postgresql://trackd@db:5432/trackd
python -m trackd.server --create-user alice        # prints alice's API key once
python -m trackd.server --create-team vision --add-member vision alice
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _accounts
from ._db import Database
from ._migrations import migrate
from ._serve import serve
from ._settings import SETTINGS, Settings, load
from .errors import ServerError


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
    admin.add_argument("--create-team", metavar="TEAM", help="create a team")
    admin.add_argument("--add-member", nargs=2, metavar=("TEAM", "USER"))
    admin.add_argument("--remove-member", nargs=2, metavar=("TEAM", "USER"))
    return parser


def _show_key(user: str, key: str) -> None:
    print(f"trackd: API key for {user!r} (shown once): {key}", flush=True)


def _admin_commands(args: argparse.Namespace, db: Database) -> bool:
    """Run the admin commands given, if any; returns whether there were any."""
    ran = False
    with db.write() as conn:
        if args.create_user:
            _show_key(args.create_user, _accounts.create_user(conn, args.create_user, args.admin))
            ran = True
        if args.create_key:
            _show_key(args.create_key, _accounts.create_key(conn, args.create_key))
            ran = True
        if args.create_team:
            _accounts.create_team(conn, args.create_team)
            print(f"trackd: created team {args.create_team!r}")
            ran = True
        if args.add_member:
            _accounts.add_member(conn, *args.add_member)
            print(f"trackd: added {args.add_member[1]!r} to team {args.add_member[0]!r}")
            ran = True
        if args.remove_member:
            _accounts.remove_member(conn, *args.remove_member)
            print(f"trackd: removed {args.remove_member[1]!r} from team {args.remove_member[0]!r}")
            ran = True
    return ran


def _prepare(settings: Settings) -> Database:
    """Open and upgrade the database; create the admin user on first start."""
    db = Database.open(settings.db, settings.data_dir)
    before, after = migrate(db.writer)
    if before != after:
        print(f"trackd: database schema upgraded from version {before} to {after}", flush=True)
    with db.write() as conn:
        key = _accounts.bootstrap(conn, settings.admin_user, settings.admin_key)
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
        db = _prepare(settings)
        try:
            if not _admin_commands(args, db):
                serve(settings, db)
        finally:
            db.close()
    except ServerError as exc:
        print(f"trackd: error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
