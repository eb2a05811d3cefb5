"""The ``trackd`` command line."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__


def _server(args: list[str]) -> int:
    # The client never imports server code: hand the process over to it.
    os.execv(sys.executable, [sys.executable, "-m", "trackd.server", *args])
    return 0  # not reached


def _status(_args: argparse.Namespace) -> int:
    from ._settings import load
    from ._spawn import PID_NAME, _locked_by_daemon

    settings = load()
    path = settings.daemon_path
    alive = path.is_dir() and _locked_by_daemon(path)
    pid = (path / PID_NAME).read_text().strip() if alive and (path / PID_NAME).exists() else "-"
    print(f"daemon: {'running (pid ' + pid + ')' if alive else 'not running'}")
    print(f"daemon dir: {path}")
    print(f"server: {settings.base_url or '(none; runs are stored offline)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["server"]:
        return _server(argv[1:])
    parser = argparse.ArgumentParser(prog="trackd", description="trackd experiment tracking")
    parser.add_argument("--version", action="version", version=f"trackd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("server", help="run the tracking server (see `trackd server --help`)")
    sub.add_parser("status", help="show the daemon and server this machine uses")
    args = parser.parse_args(argv)
    commands = {"status": _status}
    return commands[args.command](args)
