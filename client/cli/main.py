"""The ``trackd`` command line."""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import project_setup


def _server(args: list[str]) -> int:
    # The client never imports server code: hand the process over to it.
    os.execv(sys.executable, [sys.executable, "-m", "trackd.server", *args])
    return 0  # not reached


def _status(_args: argparse.Namespace) -> int:
    from .status import status

    return status()


def _sync(args: argparse.Namespace) -> int:
    from .sync import sync

    return 1 if sync(args.run_dirs) else 0


def _import(args: argparse.Namespace) -> int:
    if args.source == "mlflow":
        from .import_mlflow import import_mlflow

        return 1 if import_mlflow(args.tracking_uri, args.experiment) else 0
    from .import_wandb import import_wandb

    return 1 if import_wandb(args.paths) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["server"]:
        return _server(argv[1:])
    parser = argparse.ArgumentParser(prog="trackd", description="trackd experiment tracking")
    parser.add_argument("--version", action="version", version=f"trackd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("server", help="run the tracking server (see `trackd server --help`)")
    project_setup.add_parsers(sub)
    sub.add_parser("status", help="show the daemon, the server and uploads still pending")
    sync_cmd = sub.add_parser("sync", help="upload offline runs and leftovers to the server")
    sync_cmd.add_argument("run_dirs", nargs="*", help="run directories (default: all not uploaded)")
    import_cmd = sub.add_parser("import", help="bring runs of another tracker over")
    sources = import_cmd.add_subparsers(dest="source", required=True)
    wandb_cmd = sources.add_parser("wandb", help="wandb run directories (run-*.wandb files)")
    wandb_cmd.add_argument("paths", nargs="+", help="run-*.wandb files, run dirs or wandb dirs")
    mlflow_cmd = sources.add_parser("mlflow", help="runs of an MLflow tracking store")
    mlflow_cmd.add_argument("--tracking-uri", required=True, help="file:///..., sqlite:///..., URL")
    mlflow_cmd.add_argument("--experiment", help="one experiment's name (default: all)")
    args = parser.parse_args(argv)
    commands = {
        "status": _status,
        "sync": _sync,
        "login": project_setup.login_command,
        "init": project_setup.init_command,
        "import": _import,
    }
    return commands[args.command](args)
