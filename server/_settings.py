"""The server's settings: one frozen dataclass built from one table.

Each setting has a default, an environment variable and a command-line flag; a flag wins over
the environment, which wins over the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import StartupError

# (name, default, environment variable, help)
SETTINGS: tuple[tuple[str, Any, str, str], ...] = (
    ("host", "127.0.0.1", "TRACKD_SERVER_HOST", "address to bind; 0.0.0.0 exposes the server"),
    ("port", 8080, "TRACKD_SERVER_PORT", "TCP port to listen on (0 picks a free one)"),
    (
        "data_dir",
        "~/.trackd-server",
        "TRACKD_SERVER_DATA_DIR",
        "directory for the SQLite database and uploaded run files",
    ),
    (
        "db",
        None,
        "TRACKD_SERVER_DB",
        "database URL, e.g. postgresql://user@host:5432/trackd (default: SQLite in data dir)",
    ),
    (
        "files",
        None,
        "TRACKD_SERVER_FILES",
        "where run files and media go: s3://bucket/prefix (an S3-compatible object store), or "
        "a directory several servers may share (default: <data dir>/blobs)",
    ),
    (
        "files_endpoint",
        None,
        "TRACKD_SERVER_FILES_ENDPOINT",
        "URL of an S3-compatible store other than AWS, e.g. http://minio:9000 (default: "
        "AWS_ENDPOINT_URL, else AWS)",
    ),
    (
        "heartbeat_timeout",
        120.0,
        "TRACKD_SERVER_HEARTBEAT_TIMEOUT",
        "seconds without a heartbeat after which a running run is marked crashed",
    ),
    ("admin_user", "admin", "TRACKD_ADMIN_USER", "name of the admin user created on first start"),
    (
        "admin_key",
        None,
        "TRACKD_ADMIN_KEY",
        "API key for the admin user created on first start (default: a new random key)",
    ),
    (
        "max_body_mb",
        32,
        "TRACKD_SERVER_MAX_BODY_MB",
        "largest ingest request body accepted, in MiB",
    ),
    (
        "header_timeout",
        30.0,
        "TRACKD_SERVER_HEADER_TIMEOUT",
        "seconds a client has to send a request's headers, counted from when it connects",
    ),
    (
        "body_timeout",
        60.0,
        "TRACKD_SERVER_BODY_TIMEOUT",
        "seconds a request body may stall (no bytes arriving) before the request is dropped",
    ),
    (
        "workers",
        1,
        "TRACKD_SERVER_WORKERS",
        "server processes answering on the port (more than 1 needs PostgreSQL)",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("~/.trackd-server")
    db: str | None = None
    files: str | None = None
    files_endpoint: str | None = None
    heartbeat_timeout: float = 120.0
    admin_user: str = "admin"
    admin_key: str | None = None
    max_body_mb: int = 32
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    workers: int = 1

    @property
    def max_body(self) -> int:
        return self.max_body_mb * 1024 * 1024


def _convert(name: str, default: Any, raw: Any, source: str) -> Any:
    if raw is None:
        return None
    if name == "data_dir":
        return Path(os.path.expanduser(str(raw)))
    kind = type(default)
    if kind in (int, float):
        try:
            value = kind(raw)
        except (TypeError, ValueError) as exc:
            raise StartupError(f"{source}: {raw!r} is not a number") from exc
        if value < 0:
            raise StartupError(f"{source}: {raw!r} must not be negative")
        return value
    return str(raw)


def load(overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from the defaults, the environment and ``overrides`` (command-line flags)."""
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for name, default, env, _help in SETTINGS:
        if overrides.get(name) is not None:
            raw, source = overrides[name], f"--{name.replace('_', '-')}"
        elif os.environ.get(env):
            raw, source = os.environ[env], env
        else:
            raw, source = default, name
        values[name] = _convert(name, default, raw, source)
    return Settings(**values)
