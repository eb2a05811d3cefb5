"""A misbehaving HTTP/1.1 proxy for trackd's end-to-end fault tests.

``FaultProxy`` listens on a loopback port between a client (the trackd daemon's uploader) and a
real upstream server (uvicorn serving trackd.server) and, request by request, either forwards
transparently or injects the fault a test asked for: the server being down, an error status, a 429
with ``Retry-After``, a delay longer than the client's timeout, a reset after the server applied the
request, a request dropped before it reached the server, or a black hole.

It frames HTTP/1.1 on keep-alive connections (Content-Length and chunked bodies in both directions,
read-until-close responses), so a fault hits exactly the requests the test chose, and it counts what
it did, so a test can assert that the fault really happened::

    with FaultProxy(server_port) as proxy:
        proxy.error(status=503, count=2)
        ...  # the daemon, pointed at proxy.url, sees two 503s and then the real server
        proxy.wait_until(lambda s: s.requests_forwarded >= 1)
        assert proxy.stats.errors_injected == 2

The proxy runs an asyncio loop in a daemon thread. Every public method may be called from any other
thread, and a mode switch has taken effect when the call returns. Each forwarded request gets its own
upstream connection, so a stale upstream keep-alive connection can never fail a request by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import http
import ipaddress
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, TypeVar

__all__ = ["FaultProxy", "Kind", "Mode", "ProxyStats"]

_T = TypeVar("_T")
_Sink = Callable[[bytes], Awaitable[None]]

_LISTEN_HOST = "127.0.0.1"
_CALL_TIMEOUT = 10.0  # seconds a mode switch or close() may take before we call the proxy stuck
_REBIND_TIMEOUT = 2.0  # seconds to retry binding the old port when coming back from down()
_PIECE = 64 * 1024
_MAX_HEADER_LINES = 200
_RESET_PAUSE = 0.05  # lets the client read the partial response before the reset arrives


class Kind(str, enum.Enum):
    """The proxy's modes; see the methods of ``FaultProxy`` of the same names."""

    PASS = "pass"
    DOWN = "down"
    ERROR = "error"
    RATE_LIMIT = "rate_limit"
    DELAY = "delay"
    RESET_MID_RESPONSE = "reset_mid_response"
    DROP_REQUEST = "drop_request"
    BLACKHOLE = "blackhole"


_COUNTED = frozenset(
    {Kind.ERROR, Kind.RATE_LIMIT, Kind.DELAY, Kind.RESET_MID_RESPONSE, Kind.DROP_REQUEST}
)


@dataclass(frozen=True, slots=True)
class Mode:
    """What the proxy does with each request.

    A counted fault applies to the next ``count`` requests, after which the proxy passes again;
    ``count=None`` keeps it until the mode is changed. ``Mode(Kind.ERROR, count=2, status=503)``.
    """

    kind: Kind
    count: int | None = None
    status: int = 500
    retry_after: float = 1.0
    seconds: float = 0.0
    message: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind):
            raise TypeError(f"Mode kind must be a Kind, got {type(self.kind).__name__}")
        if self.count is not None:
            if self.kind not in _COUNTED:
                raise ValueError(
                    f"mode {self.kind.value!r} takes no count; it lasts until the mode is changed"
                )
            if self.count < 1:
                raise ValueError(f"count must be >= 1 or None (until changed), got {self.count}")
        if self.kind is Kind.ERROR and not 400 <= self.status <= 599:
            raise ValueError(f"error status must be 4xx or 5xx, got {self.status}")
        if self.kind is Kind.RATE_LIMIT and self.retry_after < 0:
            raise ValueError(f"retry_after must be >= 0 seconds, got {self.retry_after}")
        if self.kind is Kind.DELAY and self.seconds <= 0:
            raise ValueError(f"delay needs seconds > 0, got {self.seconds}")


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """A snapshot of what the proxy has done since it started.

    A counter is raised before the client can see the outcome it counts, so a test may read the
    stats as soon as its client call has returned or raised.
    """

    connections_accepted: int = 0
    connections_killed: int = 0  # cut by down(), close(), or leaving blackhole
    requests_received: int = 0  # complete requests read from clients
    requests_forwarded: int = 0  # written to the upstream server
    responses_relayed: int = 0  # complete upstream responses sent back to a client
    errors_injected: int = 0
    rate_limited: int = 0
    delayed: int = 0
    resets_mid_response: int = 0
    requests_dropped: int = 0
    blackholed: int = 0
    upstream_failures: int = 0  # upstream refused or broke; the client got a reset

    @property
    def faults_injected(self) -> int:
        """All faults the proxy injected into requests (not counting down or upstream failures)."""
        return (
            self.errors_injected
            + self.rate_limited
            + self.delayed
            + self.resets_mid_response
            + self.requests_dropped
            + self.blackholed
        )


class FaultProxy:
    """An HTTP/1.1 proxy on ``127.0.0.1`` that injects faults between a client and ``upstream``.

    Starts listening on construction; use it as a context manager or call ``close()``::

        with FaultProxy(server_port) as proxy:
            client = httpx.Client(base_url=proxy.url)
            proxy.reset_mid_response(count=1)
    """

    def __init__(self, upstream_port: int, upstream_host: str = _LISTEN_HOST, *, port: int = 0):
        try:
            loopback = ipaddress.ip_address(upstream_host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"FaultProxy only talks to loopback addresses, got {upstream_host!r}")
        self._upstream = (upstream_host, upstream_port)
        self._port = port
        self._lock = threading.Lock()
        self._mode = Mode(Kind.PASS)
        self._stats = ProxyStats()
        self._closed = False
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="trackd-faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(_CALL_TIMEOUT):
            raise RuntimeError(f"FaultProxy did not start listening within {_CALL_TIMEOUT} s")
        if self._startup_error is not None:
            self._thread.join(_CALL_TIMEOUT)
            raise RuntimeError(
                f"FaultProxy could not listen on {_LISTEN_HOST}:{port}: {self._startup_error}"
            ) from self._startup_error

    # -- public API, called from the test thread -------------------------------------------------

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        host, port = self._upstream
        return f"<FaultProxy {self.url} -> {host}:{port} mode={self.mode.kind.value}>"

    @property
    def port(self) -> int:
        """The port the proxy listens on; it stays the same across down() and back."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL for clients, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{_LISTEN_HOST}:{self._port}"

    @property
    def mode(self) -> Mode:
        """The current mode; a counted fault shows how many requests it has left."""
        with self._lock:
            return self._mode

    @property
    def stats(self) -> ProxyStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return self._stats

    def set_mode(self, mode: Mode | Kind | str) -> None:
        """Switch mode; takes effect for every request read after this returns."""
        if not isinstance(mode, Mode):
            known = ", ".join(kind.value for kind in Kind)
            try:
                kind = Kind(mode)
            except ValueError:
                raise ValueError(
                    f"unknown mode {mode!r}; expected a Mode or one of: {known}"
                ) from None
            try:
                mode = Mode(kind)
            except ValueError as exc:
                raise ValueError(
                    f"set_mode({kind.value!r}): {exc}; pass a Mode or call proxy.{kind.value}(...)"
                ) from None
        self._call(self._apply(mode))

    def passthrough(self) -> None:
        """Forward every request transparently (and listen again after ``down()``)."""
        self.set_mode(Mode(Kind.PASS))

    def down(self) -> None:
        """Close the listening socket and reset every open connection, as a dead server would."""
        self.set_mode(Mode(Kind.DOWN))

    def error(self, status: int = 500, count: int | None = None, message: str = "") -> None:
        """Answer ``status`` with a trackd JSON error body, without reaching the upstream."""
        self.set_mode(Mode(Kind.ERROR, count=count, status=status, message=message))

    def rate_limit(self, retry_after: float = 1.0, count: int | None = None) -> None:
        """Answer 429 with ``Retry-After: retry_after``, without reaching the upstream."""
        self.set_mode(Mode(Kind.RATE_LIMIT, count=count, status=429, retry_after=retry_after))

    def delay(self, seconds: float, count: int | None = None) -> None:
        """Hold each request ``seconds`` and then forward it, even if the client gave up."""
        self.set_mode(Mode(Kind.DELAY, count=count, seconds=seconds))

    def reset_mid_response(self, count: int | None = None) -> None:
        """Forward, read the whole response, send part of its head, then reset the connection."""
        self.set_mode(Mode(Kind.RESET_MID_RESPONSE, count=count))

    def drop_request(self, count: int | None = None) -> None:
        """Read the request and reset the connection without forwarding it."""
        self.set_mode(Mode(Kind.DROP_REQUEST, count=count))

    def blackhole(self) -> None:
        """Read requests and never answer; their connections are reset when the mode changes."""
        self.set_mode(Mode(Kind.BLACKHOLE))

    def wait_until(
        self, predicate: Callable[[ProxyStats], bool], timeout: float = 5.0
    ) -> ProxyStats:
        """Poll the stats until ``predicate`` holds; raise TimeoutError with them if it never does."""
        deadline = time.monotonic() + timeout
        while not predicate(stats := self.stats):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"FaultProxy stats did not reach the condition in {timeout} s: {stats}"
                )
            time.sleep(0.01)
        return stats

    def close(self) -> None:
        """Stop listening, reset every connection and stop the thread; calling it again is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended on its own
                loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(_CALL_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"FaultProxy thread did not stop within {_CALL_TIMEOUT} s")

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the proxy's loop and wait for its result."""
        if self._closed or self._loop is None or not self._thread.is_alive():
            coro.close()
            raise RuntimeError(f"{self!r} is closed; create a new FaultProxy")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FaultProxy methods must not be called from the proxy's own thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT)

    # -- the proxy's own thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the constructor rather than lost in a thread
            self._startup_error = self._startup_error or exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        try:
            await self._listen()
        except OSError as exc:
            self._startup_error = exc
            return
        self._ready.set()
        await self._stopping.wait()
        self._stop_listening()
        await self._kill_all()

    async def _listen(self) -> None:
        """Listen on our port; after down() the port is briefly retried, never changed."""
        deadline = time.monotonic() + _REBIND_TIMEOUT
        while True:
            try:
                server = await asyncio.start_server(
                    self._serve, _LISTEN_HOST, self._port, reuse_address=True
                )
                break
            except OSError:
                if self._port == 0 or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self._server = server
        self._port = server.sockets[0].getsockname()[1]

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # closes the listening socket now; new connections are refused

    async def _kill_all(self) -> None:
        """Reset every client connection and wait until their handlers have finished."""
        conns = list(self._conns)
        self._bump("connections_killed", len(conns))
        for conn in conns:
            _reset(conn.writer)
            conn.task.cancel()
        await asyncio.gather(*(conn.task for conn in conns), return_exceptions=True)
        for _ in range(3):  # aborted transports close their sockets on the next loop iterations
            await asyncio.sleep(0)

    async def _apply(self, mode: Mode) -> None:
        with self._lock:
            old, self._mode = self._mode, mode
        self._changed.set()  # releases blackholed requests
        self._changed = asyncio.Event()
        if mode.kind is Kind.DOWN and old.kind is not Kind.DOWN:
            self._stop_listening()
            await self._kill_all()
        elif old.kind is Kind.DOWN and mode.kind is not Kind.DOWN:
            try:
                await self._listen()
            except OSError as exc:
                with self._lock:
                    self._mode = old
                raise RuntimeError(
                    f"FaultProxy could not listen again on port {self._port}: {exc}"
                ) from exc

    def _take(self) -> Mode:
        """The mode for the request just read; a counted fault is used up by one."""
        with self._lock:
            mode = self._mode
            if mode.count is not None:
                left = mode.count - 1
                self._mode = replace(mode, count=left) if left else Mode(Kind.PASS)
            return mode

    def _bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._stats = replace(self._stats, **{name: getattr(self._stats, name) + by})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle one client connection, request by request."""
        task = asyncio.current_task()
        assert task is not None
        if self.mode.kind is Kind.DOWN:  # accepted just before down() closed the listener
            _reset(writer)
            return
        conn = _Conn(writer, task)
        self._conns.add(conn)
        self._bump("connections_accepted")
        try:
            while await self._serve_one(reader, writer):
                pass
        except (_BadMessage, OSError):
            _reset(writer)
        except asyncio.CancelledError:
            # Killed by down() or close(). Ending normally matters: asyncio.streams logs an
            # error for a connection task that ends cancelled.
            pass
        finally:
            self._conns.discard(conn)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and act on it; return whether the connection stays open."""
        request = await _read_request(reader)
        if request is None:
            return False
        self._bump("requests_received")
        changed = self._changed
        mode = self._take()
        if mode.kind is Kind.PASS:
            return await self._forward(request, writer)
        if mode.kind in (Kind.ERROR, Kind.RATE_LIMIT):
            self._bump("errors_injected" if mode.kind is Kind.ERROR else "rate_limited")
            await _send(writer, _injected_response(mode, request))
            return request.keep_alive
        if mode.kind is Kind.DELAY:
            self._bump("delayed")
            await asyncio.sleep(mode.seconds)
            return await self._forward(request, writer)
        if mode.kind is Kind.RESET_MID_RESPONSE:
            await self._forward_then_reset(request, writer)
        elif mode.kind is Kind.DROP_REQUEST:
            self._bump("requests_dropped")
        elif mode.kind is Kind.BLACKHOLE:
            self._bump("blackholed")
            await changed.wait()
            self._bump("connections_killed")
        _reset(writer)
        return False

    async def _open_upstream(
        self, client: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to the upstream; if it is down, reset the client as a refused connection would."""
        try:
            return await asyncio.open_connection(*self._upstream)
        except OSError:
            self._bump("upstream_failures")
            _reset(client)
            return None

    async def _forward(self, request: _Request, client: asyncio.StreamWriter) -> bool:
        """Send ``request`` upstream and stream the response back; return keep-alive.

        The last piece of the response is held back until it is counted, so a client that has
        its response always finds it in ``stats.responses_relayed``.
        """
        upstream = await self._open_upstream(client)
        if upstream is None:
            return False
        up_reader, up_writer = upstream
        held: list[bytes] = []

        async def to_client(data: bytes) -> None:
            if held:
                await _send(client, held.pop())
            held.append(data)

        try:
            await _send_upstream(up_writer, request)
            self._bump("requests_forwarded")
            keep_alive = await _relay_response(request, up_reader, to_client)
        except (_BadMessage, OSError):
            self._bump("upstream_failures")
            _reset(client)
            return False
        finally:
            up_writer.close()
        self._bump("responses_relayed")
        await _send(client, b"".join(held))
        return keep_alive and request.keep_alive and not client.is_closing()

    async def _forward_then_reset(self, request: _Request, client: asyncio.StreamWriter) -> None:
        """Let the upstream answer in full, but give the client only part of the answer."""
        upstream = await self._open_upstream(client)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        pieces: list[bytes] = []

        async def collect(data: bytes) -> None:
            pieces.append(data)

        try:
            await _send_upstream(up_writer, request)
            self._bump("requests_forwarded")
            await _relay_response(request, up_reader, collect)
        except (_BadMessage, OSError):
            self._bump("upstream_failures")
            return
        finally:
            up_writer.close()
        response = b"".join(pieces)
        await _send(client, response[: _partial_head_length(response)])
        await asyncio.sleep(_RESET_PAUSE)
        self._bump("resets_mid_response")


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    task: asyncio.Task[None] = field(repr=False)


class _BadMessage(Exception):
    """A peer sent something that is not HTTP/1.1, or closed inside a message."""


class _Head(NamedTuple):
    """The start line and headers of a request or response, as read (``raw``) and parsed."""

    start_line: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # (lower-case name, value)
    raw: bytes

    def values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]

    def tokens(self, name: bytes) -> list[bytes]:
        """Comma-separated, lower-cased tokens of every ``name`` header (Connection, TE)."""
        joined = b",".join(self.values(name))
        return [token.strip().lower() for token in joined.split(b",") if token.strip()]


class _Body(NamedTuple):
    kind: str  # "none", "length", "chunked" or "close" (read until the connection closes)
    length: int = 0


class _Request(NamedTuple):
    head: _Head
    body: bytes
    method: bytes
    keep_alive: bool


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError as exc:  # longer than the reader's limit
        raise _BadMessage(f"header line too long: {exc}") from exc


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    """Read a start line and headers; None when the peer closed cleanly before a message."""
    line = await _readline(reader)
    for _ in range(4):  # RFC 9112 lets a client send stray CRLFs between requests
        if line not in (b"\r\n", b"\n"):
            break
        line = await _readline(reader)
    if not line:
        return None
    raw, headers = [line], []
    while True:
        line = await _readline(reader)
        if not line:
            raise _BadMessage("connection closed inside a header block")
        raw.append(line)
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.partition(b":")
        if not sep or not name.strip() or len(raw) > _MAX_HEADER_LINES:
            raise _BadMessage(f"malformed header line {line[:80]!r}")
        headers.append((name.strip().lower(), value.strip()))
    return _Head(raw[0].rstrip(b"\r\n"), tuple(headers), b"".join(raw))


def _content_length(head: _Head) -> int | None:
    values = {value.strip() for value in head.values(b"content-length")}
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit():
        raise _BadMessage(f"bad Content-Length {sorted(values)!r}")
    return int(next(iter(values)))


def _request_body(head: _Head) -> _Body:
    encodings = head.tokens(b"transfer-encoding")
    if encodings:
        if encodings[-1] != b"chunked":
            raise _BadMessage(f"request Transfer-Encoding {encodings!r} does not end in chunked")
        return _Body("chunked")
    length = _content_length(head)
    return _Body("length", length) if length else _Body("none")


def _response_body(method: bytes, status: int, head: _Head) -> _Body:
    if method == b"HEAD" or status < 200 or status in (204, 304):
        return _Body("none")
    encodings = head.tokens(b"transfer-encoding")
    if encodings:
        return _Body("chunked") if encodings[-1] == b"chunked" else _Body("close")
    length = _content_length(head)
    return _Body("close") if length is None else _Body("length", length)


async def _copy_body(reader: asyncio.StreamReader, body: _Body, sink: _Sink) -> None:
    """Copy one message body, framing included, from ``reader`` to ``sink``."""
    try:
        if body.kind == "length":
            left = body.length
            while left:
                piece = await reader.readexactly(min(left, _PIECE))
                left -= len(piece)
                await sink(piece)
        elif body.kind == "chunked":
            await _copy_chunked(reader, sink)
        elif body.kind == "close":
            while piece := await reader.read(_PIECE):
                await sink(piece)
    except asyncio.IncompleteReadError as exc:
        raise _BadMessage("connection closed inside a message body") from exc


async def _copy_chunked(reader: asyncio.StreamReader, sink: _Sink) -> None:
    while True:
        line = await _readline(reader)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadMessage(f"bad chunk size line {line[:80]!r}") from exc
        await sink(line)
        if size == 0:
            break
        await sink(await reader.readexactly(size + 2))  # the chunk and its CRLF
    while True:  # trailer fields, up to the final empty line
        line = await _readline(reader)
        if not line:
            raise _BadMessage("connection closed inside chunked trailers")
        await sink(line)
        if line in (b"\r\n", b"\n"):
            return


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Read one complete request; None when the client closed between requests."""
    head = await _read_head(reader)
    if head is None:
        return None
    parts = head.start_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _BadMessage(f"bad request line {head.start_line[:80]!r}")
    pieces: list[bytes] = []

    async def collect(data: bytes) -> None:
        pieces.append(data)

    await _copy_body(reader, _request_body(head), collect)
    connection = head.tokens(b"connection")
    if parts[2] == b"HTTP/1.0":
        keep_alive = b"keep-alive" in connection
    else:
        keep_alive = b"close" not in connection
    return _Request(head, b"".join(pieces), parts[0], keep_alive)


async def _relay_response(request: _Request, reader: asyncio.StreamReader, sink: _Sink) -> bool:
    """Copy one response (with any 1xx interim ones) to ``sink``; return whether it allows
    keep-alive."""
    while True:
        head = await _read_head(reader)
        if head is None:
            raise _BadMessage("upstream closed the connection without a response")
        parts = head.start_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise _BadMessage(f"bad status line {head.start_line[:80]!r}")
        status = int(parts[1])
        await sink(head.raw)
        if not 100 <= status < 200:
            break
    body = _response_body(request.method, status, head)
    await _copy_body(reader, body, sink)
    return body.kind != "close" and b"close" not in head.tokens(b"connection")


async def _send_upstream(writer: asyncio.StreamWriter, request: _Request) -> None:
    writer.write(request.head.raw + request.body)
    await writer.drain()


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write to a client; a client that went away only loses the data."""
    if writer.is_closing():
        return
    writer.write(data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the peer gets a TCP RST instead of a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _partial_head_length(response: bytes) -> int:
    """Cut a response inside its header block: the status line and about half the headers."""
    status_end = response.find(b"\n") + 1
    head_end = response.find(b"\r\n\r\n")
    if head_end < 0:
        return status_end
    return max(status_end, status_end + (head_end - status_end) // 2)


def _injected_response(mode: Mode, request: _Request) -> bytes:
    """The answer for error and rate-limit modes, in trackd's JSON error format."""
    try:
        reason = http.HTTPStatus(mode.status).phrase
    except ValueError:
        reason = "Injected"
    target = request.head.start_line.split(b" ")[1].decode("latin-1")
    code = "rate_limited" if mode.kind is Kind.RATE_LIMIT else "injected"
    message = mode.message or (
        f"FaultProxy injected HTTP {mode.status} for {request.method.decode('latin-1')} {target}"
    )
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    lines = [
        f"HTTP/1.1 {mode.status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: " + ("keep-alive" if request.keep_alive else "close"),
    ]
    if mode.kind is Kind.RATE_LIMIT:
        lines.append(f"Retry-After: {mode.retry_after:g}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
