"""Every setting the training process and the daemon read from the environment, in one table.

The daemon is spawned with the training process's environment, so both sides build their
settings from the same rows (the server has a table of its own). Version 1.

Each row is ``(name, default, environment variable, help)``. :func:`load` builds a frozen
:class:`Settings` from the table and the environment; the README lists every row (a test
checks that).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import UsageError

# (name, default, environment variable, help)
TABLE: tuple[tuple[str, Any, str, str], ...] = (
    ("mode", "online", "TRACKD_MODE", "online | offline | disabled"),
    ("dir", "./trackd", "TRACKD_DIR", "where run directories are created"),
    ("project", None, "TRACKD_PROJECT", "default project for init()"),
    ("entity", None, "TRACKD_ENTITY", "default entity (user or team) for init()"),
    ("run_id", None, "TRACKD_RUN_ID", "run id for init() (e.g. to resume)"),
    ("base_url", None, "TRACKD_BASE_URL", "server URL (overrides the one saved by login)"),
    ("api_key", None, "TRACKD_API_KEY", "API key (overrides the one saved by login)"),
    ("config_dir", "~/.config/trackd", "TRACKD_CONFIG_DIR", "where login saves credentials"),
    ("daemon_dir", None, "TRACKD_DAEMON_DIR", "daemon socket, pid and log; default per user"),
    ("silent", False, "TRACKD_SILENT", "1 = print nothing but warnings"),
    ("queue_bytes", 64 << 20, "TRACKD_QUEUE_BYTES", "memory for unconfirmed records"),
    ("finish_timeout", 60.0, "TRACKD_FINISH_TIMEOUT", "seconds finish() waits for data"),
    ("fsync_interval", 0.1, "TRACKD_FSYNC_INTERVAL", "daemon: seconds between group fsyncs"),
    ("idle_timeout", 30.0, "TRACKD_DAEMON_IDLE_TIMEOUT", "daemon: exit after idle seconds"),
    ("liveness_interval", 1.0, "TRACKD_LIVENESS_INTERVAL", "daemon: seconds between checks"),
    ("batch_bytes", 1 << 20, "TRACKD_BATCH_BYTES", "uploader: max bytes in one batch"),
    ("batch_seconds", 1.0, "TRACKD_BATCH_SECONDS", "uploader: max seconds a record waits"),
    ("http_timeout", 10.0, "TRACKD_HTTP_TIMEOUT", "uploader: seconds per HTTP request"),
    (
        "http_trust_env",
        False,
        "TRACKD_HTTP_TRUST_ENV",
        "1 = use HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE from the environment",
    ),
    ("ca_bundle", None, "TRACKD_CA_BUNDLE", "CA certificates (PEM) to trust for an https server"),
    ("heartbeat_interval", 15.0, "TRACKD_HEARTBEAT_INTERVAL", "uploader: seconds"),
    (
        "system_interval",
        15.0,
        "TRACKD_SYSTEM_INTERVAL",
        "daemon: seconds between system-metrics samples (0 = off)",
    ),
    ("console", True, "TRACKD_CONSOLE", "capture stdout/stderr into the run (0 = off)"),
    (
        "environment_files",
        True,
        "TRACKD_ENVIRONMENT_FILES",
        "save requirements.txt (and diff.patch in a dirty git checkout) with each run (0 = off)",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str
    dir: str
    project: str | None
    entity: str | None
    run_id: str | None
    base_url: str | None
    api_key: str | None
    config_dir: str
    daemon_dir: str | None
    silent: bool
    queue_bytes: int
    finish_timeout: float
    fsync_interval: float
    idle_timeout: float
    liveness_interval: float
    batch_bytes: int
    batch_seconds: float
    http_timeout: float
    http_trust_env: bool
    ca_bundle: str | None
    heartbeat_interval: float
    system_interval: float
    console: bool
    environment_files: bool

    @property
    def daemon_path(self) -> Path:
        """The per-user directory holding the daemon's socket, pid and log."""
        if self.daemon_dir:
            return Path(self.daemon_dir)
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime else Path(tempfile.gettempdir())
        return base / f"trackd-{os.getuid()}"

    def http_options(self) -> dict[str, Any]:
        """What every httpx client of the training process and the daemon is built with."""
        options: dict[str, Any] = {"trust_env": self.http_trust_env}
        if self.ca_bundle:
            try:
                options["verify"] = ssl.create_default_context(cafile=self.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(
                    f"TRACKD_CA_BUNDLE={self.ca_bundle!r} cannot be loaded ({exc}); "
                    "point it at a file of PEM certificates"
                ) from exc
        return options

    @property
    def config_path(self) -> Path:
        return Path(self.config_dir).expanduser()


def _convert(raw: str, default: Any, env: str) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        kind = type(default).__name__
        raise UsageError(f"{env}={raw!r} is not a valid {kind}; set a number") from exc
    return raw


def load(**overrides: Any) -> Settings:
    """Settings from the table's defaults, the environment, then ``overrides``."""
    values: dict[str, Any] = {}
    for name, default, env, _help in TABLE:
        raw = os.environ.get(env)
        values[name] = default if raw in (None, "") else _convert(raw, default, env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    assert {f.name for f in fields(Settings)} == set(values), "TABLE and Settings disagree"
    return Settings(**values)
