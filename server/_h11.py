"""uvicorn's h11 protocol with a deadline for a request's headers.

uvicorn closes idle keep-alive connections, but a client that sends part of a request line or
of its headers and then stalls (or trickles a byte at a time) holds its socket for good, and
enough of them exhaust the server's file descriptors. The ASGI app cannot help: it is called
only once the headers are complete. So this protocol gives a client ``header_timeout`` seconds,
counted from when the server starts waiting for a request (on connect and after each
response), to finish its headers; past that it answers 408 (if anything was sent) and closes.
A stalled body is timed out in :mod:`._guard`, where it is known whether the app is waiting.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import RequestTimeout


def _timed_out_response() -> bytes:
    body = json.dumps(
        RequestTimeout(
            "the request headers did not arrive in time (TRACKD_SERVER_HEADER_TIMEOUT on the "
            "server); send the whole request without pausing"
        ).body()
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose headers take too long."""

    header_timeout = 30.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def handle_events(self) -> None:
        super().handle_events()
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        idle = self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE
        return idle and not self.transport.is_closing()

    def _watch_headers(self) -> None:
        """Start the deadline when a wait for headers begins; stop it when they are in."""
        if not self._waiting_for_headers():
            self._stop_header_timer()
        elif self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._timed_out)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if not self._waiting_for_headers():
            return
        if self.conn.trailing_data[0]:  # part of a request arrived: say why it is dropped
            self.transport.write(_timed_out_response())
        self.transport.close()


def header_deadline_protocol(header_timeout: float) -> type[H11Protocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for ``header_timeout``."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )
