"""``trackd.login``: choose the server, get an API key, check it with the server, save it.

The server is the first of: the ``host`` argument, ``TRACKD_BASE_URL``, this directory's
``./trackd/settings.json``, the default server saved by the last login, and
``http://127.0.0.1:8080``. The key is the first of: the ``key`` argument, ``TRACKD_API_KEY``
and a prompt on a terminal. A key is saved (``credentials.json``, mode 0600) only once the
server has accepted it.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass
from typing import Any

from .._http import ServerClient
from .._wire.settings import Settings, load
from ..errors import AuthError, UsageError
from .credentials import (
    DEFAULT_BASE_URL,
    credentials_path,
    dir_settings,
    normalize_url,
    read_json,
    save_api_key,
)

NO_TTY = "api_key not configured (no-tty). call trackd.login(key=...)"
GET_A_KEY = "an admin creates one with `trackd server --create-key USER`"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user behind an API key, and the entities (the user's and its teams') it may use."""

    user: str
    admin: bool
    entities: list[str]
    default_entity: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Viewer:
        return cls(
            user=str(doc["user"]),
            admin=bool(doc.get("admin", False)),
            entities=[str(e) for e in doc.get("entities", [])],
            default_entity=str(doc.get("default_entity") or doc["user"]),
        )


@dataclass(frozen=True, slots=True)
class Login:
    """A key the server accepted for ``base_url``, and who it belongs to."""

    base_url: str
    api_key: str
    viewer: Viewer


def login(key: str | None = None, host: str | None = None, relogin: bool = False) -> bool:
    """Check an API key with the server and save it for that server; returns True.

    Already logged in to that server (and no ``key`` or ``relogin``): returns True at once,
    without asking. Example::

        trackd.login(key="trk_...", host="http://trackd.lab:8080")
    """
    settings = load()
    base_url = choose_host(host, settings)
    if key is None and not relogin and saved_key(settings, base_url):
        say(settings, f"trackd: already logged in to {base_url} (relogin=True to change the key)")
        return True
    log_in(settings, base_url, key)
    return True


def log_in(settings: Settings, base_url: str, key: str | None) -> Login:
    """Find a key (argument, environment, prompt), check it with the server and save it."""
    api_key = find_key(key or settings.api_key, base_url)
    viewer = check_key(base_url, api_key, settings.http_timeout)
    save_api_key(settings, base_url, api_key)
    say(settings, f"trackd: logged in to {base_url} as {viewer.user}")
    return Login(base_url, api_key, viewer)


def choose_host(host: str | None, settings: Settings) -> str:
    """The server to log in to (see the module docstring for the order)."""
    url = (
        host
        or settings.base_url
        or dir_settings().get("base_url")
        or read_json(credentials_path(settings)).get("default_host")
        or DEFAULT_BASE_URL
    )
    return normalize_url(str(url))


def saved_key(settings: Settings, base_url: str) -> str | None:
    """The API key ``trackd login`` saved for ``base_url``, if any."""
    hosts = read_json(credentials_path(settings)).get("hosts")
    entry = hosts.get(base_url) if isinstance(hosts, dict) else None
    key = entry.get("api_key") if isinstance(entry, dict) else None
    return str(key) if key else None


def can_prompt() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def find_key(key: str | None, base_url: str) -> str:
    if key and key.strip():
        return key.strip()
    if not can_prompt():
        raise UsageError(NO_TTY)
    print(f"trackd: paste an API key for {base_url} ({GET_A_KEY})", file=sys.stderr)
    typed = getpass.getpass("trackd: API key (hidden): ").strip()
    if not typed:
        raise UsageError(f"no API key entered for {base_url}; paste one ({GET_A_KEY})")
    return typed


def check_key(base_url: str, api_key: str, timeout: float) -> Viewer:
    """The key's user, or :class:`AuthError` with the server's reason."""
    try:
        with ServerClient(base_url, api_key, timeout=timeout) as client:
            return Viewer.from_json(client.get("/viewer"))
    except AuthError as exc:
        raise AuthError(f"login to {base_url} failed: {exc}", exc.status) from exc


def say(settings: Settings, message: str) -> None:
    if not settings.silent:
        print(message, file=sys.stderr)
