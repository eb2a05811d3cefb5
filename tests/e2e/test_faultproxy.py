"""FaultProxy against a real keep-alive HTTP/1.1 server and a real httpx client.

Each test checks one mode from both sides: what the client saw, and what reached the upstream.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests._support.faultproxy import FaultProxy, Kind, Mode

pytestmark = pytest.mark.timeout(30)


class _Handler(BaseHTTPRequestHandler):
    """POST counts and echoes the body's size; GET /chunked and /until-close test framing."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a proxy that leaks an upstream connection fails the test instead of hanging
    server: _Upstream

    def do_POST(self) -> None:
        body = self._read_body()
        count = self.server.record(body)
        self._reply(200, {"ok": True, "count": count, "size": len(body)})

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"no length, ends when the connection closes")
            self.close_connection = True
        else:
            self._reply(200, {"path": self.path})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            pieces = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return b"".join(pieces)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


class _Upstream(ThreadingHTTPServer):
    """The real server behind the proxy, counting the POSTs that reach it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self.bodies: list[bytes] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def posts(self) -> int:
        with self._lock:
            return len(self.bodies)

    def record(self, body: bytes) -> int:
        with self._lock:
            self.bodies.append(body)
            return len(self.bodies)

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.posts < count:
            assert time.monotonic() < deadline, f"upstream saw {self.posts} POSTs, not {count}"
            time.sleep(0.01)


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="upstream", daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.port) as proxy:
        yield proxy


def _client(proxy: FaultProxy, timeout: float = 5.0) -> httpx.Client:
    # trust_env=False: an HTTP_PROXY in the environment must not route loopback traffic away.
    return httpx.Client(base_url=proxy.url, timeout=timeout, trust_env=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_pass_forwards_many_requests_over_one_keep_alive_connection(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    with _client(proxy) as client:
        for i in range(50):
            response = client.post("/batches", content=b"x" * i)
            assert response.status_code == 200
            assert response.json() == {"ok": True, "count": i + 1, "size": i}
    stats = proxy.stats
    assert upstream.posts == 50
    assert stats.connections_accepted == 1
    assert stats.requests_received == stats.requests_forwarded == stats.responses_relayed == 50
    assert stats.faults_injected == 0


def test_pass_relays_chunked_and_close_delimited_messages(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    with _client(proxy) as client:
        assert client.get("/chunked").content == b"alpha-beta-gamma"
        response = client.post("/batches", content=iter([b"chunked ", b"request ", b"body"]))
        assert response.json()["size"] == len(b"chunked request body")
        assert client.get("/until-close").content.startswith(b"no length")
        assert client.get("/after").json() == {"path": "/after"}
    assert upstream.bodies == [b"chunked request body"]
    assert proxy.stats.connections_accepted == 2  # the close-delimited response ended the first


def test_large_bodies_pass_intact(proxy: FaultProxy, upstream: _Upstream) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB
    with _client(proxy) as client:
        assert client.post("/batches", content=payload).json()["size"] == len(payload)
    assert upstream.bodies == [payload]


def test_error_answers_n_requests_without_reaching_upstream(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.error(status=503, count=2)
    with _client(proxy) as client:
        for _ in range(2):
            response = client.post("/batches", content=b"{}")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "injected"
        assert upstream.posts == 0
        assert proxy.mode.kind is Kind.PASS
        assert client.post("/batches", content=b"{}").status_code == 200
    assert upstream.posts == 1
    assert proxy.stats.errors_injected == 2
    assert proxy.stats.connections_accepted == 1


def test_error_without_count_lasts_until_changed(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.set_mode(Mode(Kind.ERROR, status=500, message="disk full"))
    with _client(proxy) as client:
        for _ in range(5):
            response = client.post("/batches")
            assert response.status_code == 500
            assert response.json() == {"error": {"code": "injected", "message": "disk full"}}
        proxy.passthrough()
        assert client.post("/batches").status_code == 200
    assert upstream.posts == 1


def test_rate_limit_carries_retry_after(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.rate_limit(retry_after=3, count=1)
    with _client(proxy) as client:
        response = client.post("/batches")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert client.post("/batches").status_code == 200
    assert upstream.posts == 1
    assert proxy.stats.rate_limited == 1


def test_delay_times_out_the_client_but_still_reaches_upstream(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.delay(1.0, count=1)
    with _client(proxy, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/batches", content=b"late")
    assert upstream.posts == 0
    upstream.wait_for_posts(1)
    assert upstream.bodies == [b"late"]
    assert proxy.wait_until(lambda s: s.requests_forwarded == 1).delayed == 1


def test_reset_mid_response_hides_an_applied_request(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.reset_mid_response(count=1)
    with _client(proxy) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/batches", content=b"applied")
        assert upstream.bodies == [b"applied"]
        assert client.post("/batches").status_code == 200
    assert proxy.stats.resets_mid_response == 1
    assert upstream.posts == 2


def test_drop_request_resets_without_forwarding(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.drop_request(count=1)
    with _client(proxy) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/batches", content=b"lost")
        assert client.post("/batches", content=b"kept").status_code == 200
    assert upstream.bodies == [b"kept"]
    assert proxy.stats.requests_dropped == 1


def test_down_refuses_connections_then_recovers_on_the_same_port(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    port = proxy.port
    with _client(proxy) as client:
        assert client.post("/batches").status_code == 200  # leaves a keep-alive connection open
        proxy.down()
        assert proxy.stats.connections_killed == 1
        with pytest.raises(httpx.ConnectError):
            client.post("/batches")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        proxy.passthrough()
        assert proxy.port == port
        assert client.post("/batches").status_code == 200
    assert upstream.posts == 2


def test_blackhole_times_out_then_releases(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.blackhole()
    with _client(proxy, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/batches")
    proxy.passthrough()
    with _client(proxy) as client:
        assert client.post("/batches").status_code == 200
    assert upstream.posts == 1
    stats = proxy.stats
    assert stats.blackholed == 1
    assert stats.requests_received == 2


def test_upstream_down_resets_the_client() -> None:
    with FaultProxy(_free_port()) as proxy, _client(proxy) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/batches")
        assert proxy.stats.upstream_failures == 1


def test_mode_switches_from_another_thread_are_counted_exactly(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        with _client(proxy) as client:
            for _ in range(n):
                status = client.post("/batches").status_code
                with lock:
                    statuses.append(status)

    workers = [threading.Thread(target=send, args=(40,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for _ in range(10):
        proxy.error(status=502, count=3)
        time.sleep(0.01)
    for worker in workers:
        worker.join(20)
    assert len(statuses) == 160
    assert set(statuses) <= {200, 502}
    assert statuses.count(502) == proxy.stats.errors_injected
    assert statuses.count(200) == upstream.posts


def test_mode_validation_messages(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="takes no count"):
        Mode(Kind.BLACKHOLE, count=1)
    with pytest.raises(ValueError, match="unknown mode 'sideways'"):
        proxy.set_mode("sideways")
    with pytest.raises(ValueError, match="delay needs seconds > 0"):
        proxy.set_mode("delay")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        proxy.error(status=200)
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(80, "10.0.0.1")


def test_close_stops_the_thread_and_refuses_afterwards(upstream: _Upstream) -> None:
    proxy = FaultProxy(upstream.port)
    with _client(proxy) as client:
        assert client.post("/batches").status_code == 200
        proxy.close()
        proxy.close()
        with pytest.raises(httpx.ConnectError):
            client.post("/batches")
    with pytest.raises(RuntimeError, match="is closed"):
        proxy.error()
    assert not any(t.name == "trackd-faultproxy" for t in threading.enumerate())
