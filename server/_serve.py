"""Serving the app with uvicorn on a socket we bind ourselves (so ``--port 0`` works), in
this process or, with ``--workers N``, in N worker processes sharing it (:mod:`._workers`)."""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn

from ._app import create_app
from ._blob_store import BlobStore, open_store
from ._db import Database
from ._h11 import header_deadline_protocol
from ._settings import Settings
from ._workers import run_workers, stop_with_parent
from .errors import StartupError


class _Server(uvicorn.Server):
    """uvicorn, plus one clear line once the server accepts requests."""

    def __init__(self, config: uvicorn.Config, url: str | None) -> None:
        super().__init__(config)
        self.url = url  # None: a worker, whose parent says it once

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.url is not None:
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


def _uvicorn(settings: Settings, db: Database, store: BlobStore | None, url: str | None) -> _Server:
    config: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
        "http": header_deadline_protocol(settings.header_timeout),
    }
    return _Server(uvicorn.Config(create_app(settings, db, store), **config), url)


def _check_workers(settings: Settings, db: Database) -> None:
    if settings.workers < 1:
        raise StartupError(f"--workers {settings.workers}: give 1 or more worker processes")
    if settings.workers > 1 and db.is_sqlite:
        raise StartupError(
            f"--workers {settings.workers} needs PostgreSQL: SQLite allows one writer at a "
            "time, so one server process serves it; leave --workers out, or give "
            "--db postgresql://user@host:5432/trackd"
        )


def serve(settings: Settings, db: Database, store: BlobStore | None = None) -> None:
    """Serve until SIGINT/SIGTERM (in ``settings.workers`` processes when more than one)."""
    _check_workers(settings, db)
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    try:
        if settings.workers == 1:
            _uvicorn(settings, db, store, url).run(sockets=[sock])
        else:
            sock.listen(2048)
            db.close()  # each worker opens its own pool
            print(
                f"trackd: listening on {url} (the web UI: open {url}/) with "
                f"{settings.workers} workers",
                flush=True,
            )
            run_workers(settings, sock, serve_worker)
    finally:
        sock.close()
        sys.stdout.flush()


def serve_worker(settings: Settings, sock: socket.socket) -> None:
    """One worker process of ``--workers``: its own database pool and file store client,
    serving ``sock``."""
    stop_with_parent()
    db = Database.open(settings.db, settings.data_dir)
    try:
        _uvicorn(settings, db, open_store(settings), None).run(sockets=[sock])
    finally:
        db.close()
