"""Serving the app with uvicorn on a socket we bind ourselves (so ``--port 0`` works)."""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn

from ._app import create_app
from ._blob_store import BlobStore
from ._db import Database
from ._h11 import header_deadline_protocol
from ._settings import Settings
from .errors import StartupError


class _Server(uvicorn.Server):
    """uvicorn, plus one clear line once the server accepts requests."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"trackd: listening on {self.url} (the web UI: open {self.url}/)", flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: a response's head and body, written separately, would
    # otherwise wait for the client's delayed ACK (40 ms on Linux) on a kept-alive connection
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
        ) from exc
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, db: Database, store: BlobStore | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
        "http": header_deadline_protocol(settings.header_timeout),
    }
    app = create_app(settings, db, store)
    server = _Server(uvicorn.Config(app, **config), f"http://{shown}:{port}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        sys.stdout.flush()
