"""The guard in front of the app: the API key before the body, and every body bounded.

Every HTTP request passes through :class:`Guard` (pure ASGI middleware) before FastAPI:

- an ``/api/v1`` request is authenticated from its ``Authorization`` header before a byte of
  its body is read, so a caller without a valid key makes the server buffer nothing;
- every body has a limit: ingest ``TRACKD_SERVER_MAX_BODY_MB``, a file or blob upload
  :data:`._files.MAX_FILE_BYTES`, any other route (small JSON documents) :data:`MAX_JSON_BODY`.
  A ``Content-Length`` over it is refused unread (413); a body that passes it while it streams
  (chunked, or a lying length) is cut off there;
- the small JSON bodies are read here, checked for nesting depth, then handed on;
- a body that stops arriving for ``TRACKD_SERVER_BODY_TIMEOUT`` seconds while the app waits
  for it gets 408 (a slow upload is fine as long as bytes keep coming);
- a response sent before the request body was read in full says ``Connection: close``, so
  uvicorn does not go on reading (and discarding) the rest; but an authenticated caller's
  body refused as too large (413) is first read to its end and dropped, up to
  :data:`DRAIN_MAX`: a client sends its whole body before it reads the answer, and a
  connection closed on unread bytes reaches it as a reset, never as the 413 (the daemon
  halves its batches on a 413, while a reset only makes it retry the same batch);
- an unexpected error is logged once, with its traceback, and answered 500 with
  ``Connection: close``; a client that went away is not an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._auth import Principal, authenticate
from ._db import Database
from ._files import MAX_FILE_BYTES
from ._nesting import check_depth
from ._settings import Settings
from .errors import PayloadTooLarge, RequestTimeout, ServerError

log = logging.getLogger("trackd.server")

MAX_JSON_BODY = 1 << 20
DRAIN_MAX = 256 << 20  # a refused body up to this size is read and dropped before the 413
API = "/api/v1/"
_PRINCIPAL = "trackd.principal"
_FILE_UPLOAD = re.compile(r"/api/v1/runs/[^/]+/[^/]+/[^/]+/(files|blobs)/.")
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class Limit:
    """How large a route's body may be, and what to tell a client that sends more."""

    size: int
    what: str
    hint: str
    streamed: bool  # the route reads the body itself; else the guard reads it first


def caller(scope: Scope) -> Principal:
    """The principal the guard authenticated for this request."""
    principal: Principal = scope["state"][_PRINCIPAL]
    return principal


def limit_for(method: str, path: str, settings: Settings) -> Limit:
    """The body limit of the route at ``method path``."""
    if path == API + "ingest":
        hint = "TRACKD_SERVER_MAX_BODY_MB on the server; send smaller batches"
        return Limit(settings.max_body, "the ingest body", hint, streamed=True)
    if method == "PUT" and _FILE_UPLOAD.match(path):
        return Limit(MAX_FILE_BYTES, "the file", "store larger files elsewhere", streamed=True)
    hint = "this route takes a small JSON document"
    return Limit(MAX_JSON_BODY, "the request body", hint, streamed=False)


def _too_large(limit: Limit, size: int | None) -> PayloadTooLarge:
    shown = f"{size / 2**20:.1f} MiB" if size is not None else "larger than that"
    return PayloadTooLarge(
        f"{limit.what} is {shown}; the limit is {limit.size >> 20} MiB ({limit.hint})"
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class _Gone(Exception):
    """The client disconnected before its body was read."""


class _Body:
    """The request body as the app reads it: counted against its limit, and timed."""

    def __init__(self, scope: Scope, receive: Receive, limit: Limit, timeout: float) -> None:
        self._receive, self.limit, self.timeout = receive, limit, timeout
        self.size = 0
        length = _header(scope, b"content-length")
        self.declared = int(length) if length and length.isdigit() else None
        chunked = _header(scope, b"transfer-encoding") is not None
        self.done = not chunked and not self.declared  # no body at all

    def check_declared(self) -> None:
        if self.declared is not None and self.declared > self.limit.size:
            raise _too_large(self.limit, self.declared)

    async def receive(self) -> Message:
        if self.done:  # only a disconnect can come now: no reason to hurry it
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), self.timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"{self.limit.what} stopped arriving: no data for {self.timeout:g} s "
                "(TRACKD_SERVER_BODY_TIMEOUT on the server); send the body without pausing"
            ) from None
        if message["type"] != "http.request":
            self.done = True
            return message
        self.size += len(message.get("body", b""))
        if self.size > self.limit.size:
            raise _too_large(self.limit, None)
        self.done = not message.get("more_body", False)
        return message

    async def drain(self) -> None:
        """Read and drop the rest of a refused body, up to :data:`DRAIN_MAX` bytes in all,
        so its sender gets the answer (it reads only once it has sent everything)."""
        if self.declared is not None and self.declared > DRAIN_MAX:
            return
        while not self.done and self.size <= DRAIN_MAX:
            try:
                message = await asyncio.wait_for(self._receive(), self.timeout)
            except asyncio.TimeoutError:
                return
            if message["type"] != "http.request":
                self.done = True
                return
            self.size += len(message.get("body", b""))
            self.done = not message.get("more_body", False)

    async def read_all(self) -> bytes:
        chunks: list[bytes] = []
        while not self.done:
            message = await self.receive()
            if message["type"] != "http.request":
                raise _Gone
            chunks.append(message.get("body", b""))
        return b"".join(chunks)

    def replay(self, body: bytes) -> Receive:
        """A ``receive`` that hands the app ``body`` (already read), then waits as usual."""
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            return pending.pop() if pending else await self._receive()

        return receive


class _Reply:
    """The app's ``send``, adding ``Connection: close`` when the body was not read in full."""

    def __init__(self, send: Send, body: _Body) -> None:
        self._send, self._body = send, body
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if not self._body.done:
                message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
        await self._send(message)

    async def error(self, exc: ServerError) -> None:
        body = json.dumps(exc.body()).encode()
        headers = [(b"content-type", b"application/json"), _CLOSE]
        await self._send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})
        self.started = True


class Guard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings, db: Database) -> None:
        self.app, self.settings, self.db = app, settings, db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["method"], scope["path"], self.settings)
        body = _Body(scope, receive, limit, self.settings.body_timeout)
        reply = _Reply(send, body)
        try:
            await self._handle(scope, body, reply)
        except (_Gone, ClientDisconnect):
            return
        except ServerError as exc:
            if reply.started:
                raise
            if isinstance(exc, PayloadTooLarge) and _PRINCIPAL in scope.get("state", {}):
                await body.drain()
            await reply.error(exc)
        except Exception as exc:
            log.error("unexpected error in %s %s", scope["method"], scope["path"], exc_info=exc)
            if not reply.started:
                name = type(exc).__name__
                await reply.error(
                    ServerError(f"internal server error ({name}); see the server log")
                )

    async def _handle(self, scope: Scope, body: _Body, reply: _Reply) -> None:
        if scope["path"].startswith(API):
            principal = await run_in_threadpool(self._authenticate, scope)
            scope.setdefault("state", {})[_PRINCIPAL] = principal
        body.check_declared()
        receive: Any = body.receive
        if not body.limit.streamed:
            raw = await body.read_all()
            check_depth(raw, "the request body")
            receive = body.replay(raw)
        await self.app(scope, receive, reply.send)

    def _authenticate(self, scope: Scope) -> Principal:
        with self.db.read() as conn:
            return authenticate(conn, _header(scope, b"authorization"))
