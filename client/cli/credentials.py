"""Where the server URL, API key and default entity/project come from.

- ``<config dir>/credentials.json`` (mode 0600; ``trackd login`` writes it): API keys by
  server URL, and the default server;
- ``./trackd/settings.json`` (``trackd init`` writes it): this directory's server URL,
  entity and project;
- the environment (``TRACKD_BASE_URL``, ``TRACKD_API_KEY``, ``TRACKD_ENTITY``,
  ``TRACKD_PROJECT``), which wins over both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._wire.jsonfile import write_json
from .._wire.settings import Settings
from ..errors import UsageError

CREDENTIALS_NAME = "credentials.json"
DIR_SETTINGS = Path("trackd") / "settings.json"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class ServerTarget:
    base_url: str | None
    api_key: str | None
    entity: str | None
    project: str | None


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"server URL {url!r} must start with http:// or https://")
    return url


def credentials_path(settings: Settings) -> Path:
    return settings.config_path / CREDENTIALS_NAME


def read_json(path: Path) -> dict[str, Any]:
    """A settings or credentials file the user may have edited: a clear error if broken."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}; fix or delete the file") from exc
    return data if isinstance(data, dict) else {}


def save_api_key(settings: Settings, base_url: str, api_key: str) -> Path:
    """Remember ``api_key`` for ``base_url`` and make it the default server."""
    path = credentials_path(settings)
    data = read_json(path)
    data.setdefault("hosts", {})[base_url] = {"api_key": api_key}
    data["default_host"] = base_url
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_json(path, data, 0o600, indent=2)
    return path


def dir_settings(cwd: Path | None = None) -> dict[str, Any]:
    return read_json((cwd or Path.cwd()) / DIR_SETTINGS)


def resolve(settings: Settings) -> ServerTarget:
    """The server, key, entity and project this process should use (None where unset)."""
    local = dir_settings()
    creds = read_json(credentials_path(settings))
    base_url = settings.base_url or local.get("base_url") or creds.get("default_host")
    base_url = normalize_url(base_url) if base_url else None
    api_key = settings.api_key
    if api_key is None and base_url is not None:
        api_key = creds.get("hosts", {}).get(base_url, {}).get("api_key")
    return ServerTarget(
        base_url=base_url,
        api_key=api_key,
        entity=settings.entity or local.get("entity"),
        project=settings.project or local.get("project"),
    )
