"""``trackd login`` and ``trackd init``: log in, and set up this directory.

``trackd init`` asks (on a terminal) for the server URL, an API key if none is saved for
that server, the default entity (one the key may use) and the project, and writes them to
``./trackd/settings.json``, where ``trackd.init()`` and ``trackd.Api()`` find them. Without
a terminal, flags answer the questions::

    trackd init --host http://trackd.lab:8080 --key trk_... --entity vision --project mnist
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .._http import ServerClient
from .._wire.jsonfile import write_json
from .._wire.limits import NAME_RULE, valid_name
from .._wire.settings import Settings, load
from ..errors import AuthError, CommError, Error, UsageError
from .credentials import DIR_SETTINGS, dir_settings
from .login import Login, can_prompt, choose_host, log_in, login, saved_key, say


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    """What ``./trackd/settings.json`` holds for this directory."""

    base_url: str
    entity: str
    project: str


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``login`` and ``init`` on the ``trackd`` command line."""
    cmd = sub.add_parser("login", help="check an API key with the server and save it")
    cmd.add_argument("--key", help="API key (default: TRACKD_API_KEY, or ask on a terminal)")
    cmd.add_argument("--host", help="server URL (default: TRACKD_BASE_URL, saved, or local)")
    cmd.add_argument("--relogin", action="store_true", help="ask for a key even if one is saved")
    cmd = sub.add_parser("init", help="set this directory's server, entity and project")
    cmd.add_argument("--host", help="server URL")
    cmd.add_argument("--key", help="API key (logs in to the server with it)")
    cmd.add_argument("--entity", help="default entity: your user or one of your teams")
    cmd.add_argument("--project", help="default project")


def login_command(args: argparse.Namespace) -> int:
    return _run("login", lambda: login(key=args.key, host=args.host, relogin=args.relogin))


def init_command(args: argparse.Namespace) -> int:
    return _run("init", lambda: init_directory(args.host, args.key, args.entity, args.project))


def _run(name: str, command: Callable[[], object]) -> int:
    try:
        command()
    except Error as exc:
        print(f"trackd {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print(f"\ntrackd {name}: cancelled", file=sys.stderr)
        return 1
    return 0


def init_directory(
    host: str | None,
    key: str | None,
    entity: str | None,
    project: str | None,
    cwd: Path | None = None,
) -> Path:
    """Ask what is missing, log in if needed, and write ``./trackd/settings.json``."""
    settings = load()
    current = dir_settings(cwd)
    base_url = _ask_host(host, settings)
    done = _ensure_login(settings, base_url, key)
    chosen_entity = _choose_entity(entity, done, current.get("entity"))
    chosen_project = _choose_project(project, done, chosen_entity, current.get("project"), cwd)
    path = write_directory_settings(DirectorySettings(base_url, chosen_entity, chosen_project), cwd)
    say(settings, f"trackd: runs here log to {chosen_entity}/{chosen_project} on {base_url}")
    say(settings, f"trackd: wrote {path}")
    return path


def write_directory_settings(chosen: DirectorySettings, cwd: Path | None = None) -> Path:
    """Merge ``chosen`` into ``./trackd/settings.json`` (keeping keys it does not set)."""
    path = (cwd or Path.cwd()) / DIR_SETTINGS
    data = {**dir_settings(cwd), **asdict(chosen)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data, 0o644, indent=2)
    return path


def _ask_host(host: str | None, settings: Settings) -> str:
    default = choose_host(host, settings)
    if host or not can_prompt():
        return default
    answer = input(f"trackd server URL [{default}]: ").strip()
    return choose_host(answer or default, settings)


def _ensure_login(settings: Settings, base_url: str, key: str | None) -> Login:
    known = key or settings.api_key or saved_key(settings, base_url)
    if known is None and not can_prompt():
        raise UsageError(
            f"no API key for {base_url} and no terminal to ask for one; "
            "pass --key KEY, set TRACKD_API_KEY, or run `trackd login` first"
        )
    try:
        return log_in(settings, base_url, known)
    except AuthError as exc:
        if key or settings.api_key or not can_prompt():
            raise
        # The saved key was refused (revoked?): ask for a new one.
        print(f"trackd: {exc}", file=sys.stderr)
        return log_in(settings, base_url, None)


def _choose_entity(entity: str | None, done: Login, current: str | None) -> str:
    options = done.viewer.entities
    if entity is not None:
        if entity not in options:
            raise UsageError(
                f"entity {entity!r} is not one {done.viewer.user!r} may use on "
                f"{done.base_url}; choose one of {', '.join(options)}"
            )
        return entity
    default = current if current in options else done.viewer.default_entity
    if not can_prompt():
        return default
    return _pick("entity", options, default, allow_new=False)


def _choose_project(
    project: str | None, done: Login, entity: str, current: str | None, cwd: Path | None
) -> str:
    if project is not None:
        return _check_project(project)
    if not can_prompt():
        raise UsageError(
            "no terminal to ask for the project; pass --project NAME "
            "(a new name creates the project with the first run)"
        )
    folder = (cwd or Path.cwd()).name
    default = current or (folder if valid_name(folder) else None)
    return _check_project(_pick("project", _project_names(done, entity), default, True))


def _project_names(done: Login, entity: str) -> list[str]:
    try:
        with ServerClient(done.base_url, done.api_key) as client:
            answer = client.get(f"/entities/{entity}/projects")
    except CommError:
        return []
    return [str(p["name"]) for p in answer.get("projects", [])]


def _check_project(name: str) -> str:
    if not valid_name(name):  # the server's rule, checked here so a typo fails at once
        raise UsageError(f"project name {name!r} is not valid; use {NAME_RULE}")
    return name


def _pick(what: str, options: list[str], default: str | None, allow_new: bool) -> str:
    """Ask for one of ``options`` (by number or name), or a new name if ``allow_new``."""
    for number, option in enumerate(options, 1):
        print(f"  ({number}) {option}", file=sys.stderr)
    hint = " (a number, or a new name)" if allow_new and options else ""
    while True:
        answer = input(f"trackd {what}{hint} [{default or ''}]: ").strip() or (default or "")
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]
        if answer and (allow_new or answer in options):
            return answer
        print(f"trackd: choose a {what}: a number from the list or a name", file=sys.stderr)
