"""Clients that send huge, slow or broken requests, through raw sockets to the real server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from trackd.server._db import database_url, unpooled_engine

from tests._support.server import ServerProcess, running_server
from tests.server._batches import ingest, run_start

TIMEOUTS = {"TRACKD_SERVER_HEADER_TIMEOUT": "1", "TRACKD_SERVER_BODY_TIMEOUT": "1"}


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A SQLite server with 1 s header and body timeouts and a 1 MiB ingest limit."""
    env = {**TIMEOUTS, "TRACKD_SERVER_MAX_BODY_MB": "1"}
    with running_server(tmp_path / "server", env=env) as srv:
        yield srv


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float | None]:
    """What the server sends until it closes, and after how long (``None``: still open)."""
    start = time.monotonic()
    data = b""
    while True:
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return data, None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, None
        except ConnectionResetError:
            return data, time.monotonic() - start
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def _status(raw: bytes) -> int | None:
    head = raw.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) > 1 else None


class _Sender(threading.Thread):
    """Sends ``total`` bytes in chunks until done or the server stops taking them."""

    def __init__(
        self, sock: socket.socket, total: int, chunk: bytes, chunked: bool, tail: bytes = b""
    ) -> None:
        super().__init__(daemon=True)
        self.sock, self.total, self.chunk, self.chunked = sock, total, chunk, chunked
        self.tail = tail
        self.sent = 0

    def run(self) -> None:
        frame = b"%x\r\n%s\r\n" % (len(self.chunk), self.chunk) if self.chunked else self.chunk
        try:
            while self.sent < self.total:
                self.sock.sendall(frame)
                self.sent += len(self.chunk)
            self.sock.sendall(self.tail)
            if self.chunked:
                self.sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.timeout(90)
def test_a_large_body_without_a_key_is_refused_unread(tmp_path: Path) -> None:
    size = 64 << 20
    with running_server(tmp_path / "server") as server:
        assert server.proc is not None
        httpx.get(server.url + "/healthz")
        before = _peak_rss(server.proc.pid)
        for path in ("/api/v1/init", "/api/v1/admin/teams", "/api/v1/ingest"):
            sock = _connect(server)
            headers = {"Content-Type": "application/json", "Content-Length": str(size)}
            sock.sendall(_head("POST", path, headers) + b'{"name": "')
            # a fixed server answers at once; today's read the whole body first
            early, _ = _until_closed(sock, 1.0)
            chunk = b"a" * (1 << 20)
            sender = _Sender(sock, size - len(chunk), chunk, chunked=False, tail=chunk[12:] + b'"}')
            if not early:
                sender.start()
            raw, closed_after = _until_closed(sock, 60)
            sock.close()
            assert _status(early + raw) == 401, (early + raw)[:300]
            assert b'"unauthorized"' in early + raw
            assert closed_after is not None, "the connection was kept open"
        growth = _peak_rss(server.proc.pid) - before
    assert growth < 8 << 20, f"the server grew by {growth >> 20} MiB"


@pytest.mark.timeout(60)
def test_a_chunked_ingest_body_is_cut_off_at_the_limit(strict_server: ServerProcess) -> None:
    total = 64 << 20
    sock = _connect(strict_server)
    headers = {
        "Authorization": f"Bearer {strict_server.admin_key}",
        "Content-Type": "application/msgpack",
        "Transfer-Encoding": "chunked",
    }
    sock.sendall(_head("POST", "/api/v1/ingest", headers))
    sender = _Sender(sock, total, b"\x00" * (64 << 10), chunked=True)
    sender.start()
    raw, closed_after = _until_closed(sock, 40)
    sender.join(10)
    sock.close()
    assert _status(raw) == 413, raw[:300]
    assert b"the limit is 1 MiB" in raw
    assert closed_after is not None
    assert sender.sent < total // 2, f"the server read {sender.sent >> 20} MiB of a 1 MiB limit"


@pytest.mark.timeout(30)
def test_stalled_headers_are_timed_out(strict_server: ServerProcess) -> None:
    stalled = _connect(strict_server)
    stalled.sendall(b"POST /api/v1/init HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    trickle = _connect(strict_server)
    start = time.monotonic()
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x":  # one byte every 0.2 s: never complete
        if time.monotonic() - start > 4:
            break
        try:
            trickle.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.2)
    raw, closed_after = _until_closed(stalled, 5)
    assert closed_after is not None, "a connection with half its headers is still open"
    assert _status(raw) == 408, raw
    assert time.monotonic() - start < 4, "the trickled headers were not cut off at the deadline"
    _, trickle_closed = _until_closed(trickle, 1)
    assert trickle_closed is not None
    stalled.close()
    trickle.close()
    assert httpx.get(strict_server.url + "/healthz").status_code == 200


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", ["/api/v1/ingest", "/api/v1/heartbeat", "/api/v1/admin/teams"])
def test_stalled_bodies_are_timed_out(strict_server: ServerProcess, path: str) -> None:
    sock = _connect(strict_server)
    headers = {"Authorization": f"Bearer {strict_server.admin_key}", "Content-Length": "1000"}
    sock.sendall(_head("POST", path, headers) + b'{"name": ')
    start = time.monotonic()
    raw, closed_after = _until_closed(sock, 6)
    sock.close()
    assert closed_after is not None, f"a stalled body to {path} is still held after 6 s"
    assert _status(raw) == 408, raw
    assert b"request_timeout" in raw and b"TRACKD_SERVER_BODY_TIMEOUT" in raw
    assert time.monotonic() - start < 4


@pytest.mark.timeout(30)
def test_a_slow_upload_that_keeps_flowing_succeeds(strict_server: ServerProcess) -> None:
    with strict_server.client() as admin:
        ingest(admin, "slow", [run_start("slow")]).raise_for_status()
    parts = [bytes([i]) * 5000 for i in range(8)]

    def slowly() -> Iterator[bytes]:
        for part in parts:  # 8 x 0.4 s: longer than the body timeout in all, never idle that long
            time.sleep(0.4)
            yield part

    with strict_server.client() as admin:
        put = admin.put("/runs/admin/proj/slow/files/slow.bin", content=slowly())
        assert put.status_code == 200, put.text
        assert admin.get("/runs/admin/proj/slow/files/slow.bin").content == b"".join(parts)


@pytest.mark.timeout(60)
def test_a_500_closes_the_connection_and_logs_one_traceback(
    tmp_path: Path, db_url: str | None
) -> None:
    with running_server(tmp_path / "server", db=db_url) as server, server.client() as admin:
        ingest(admin, "r1", [run_start("r1")]).raise_for_status()
        engine = unpooled_engine(database_url(db_url, server.data_dir))
        try:
            with engine.begin() as conn:  # a real fault: a table the server needs is gone
                conn.execute(text("ALTER TABLE projects RENAME TO projects_gone"))
            failed = admin.get("/entities/admin/projects")
            assert failed.status_code == 500
            assert failed.headers.get("connection") == "close"
            assert failed.json()["error"]["code"] == "internal"
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE projects_gone RENAME TO projects"))
        finally:
            engine.dispose()
        again = admin.get("/entities/admin/projects")
        assert again.status_code == 200
        assert [p["name"] for p in again.json()["projects"]] == ["proj"]
        log = server.log_tail(2000)
    # one report of the error (its traceback shows the chained database error as its cause)
    assert log.count("unexpected error in GET /api/v1/entities/admin/projects") == 1, log
    assert "Exception in ASGI application" not in log, log


def test_a_json_body_nested_too_deep_is_a_400(admin: httpx.Client) -> None:
    deep = "[" * 3000 + "]" * 3000
    response = admin.post("/admin/teams", content=f'{{"name": {deep}}}')
    assert response.status_code == 400, response.text
    assert "nested 3001 deep; the limit is 64" in response.json()["error"]["message"]


def test_filters_nested_too_deep_are_a_400(admin: httpx.Client) -> None:
    nested = {"state": "finished"}
    for _ in range(400):
        nested = {"$and": [nested]}
    ingest(admin, "d1", [run_start("d1")]).raise_for_status()
    response = admin.get(
        "/entities/admin/projects/proj/runs", params={"filters": json.dumps(nested)}
    )
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["error"]["message"]
    shallow = {"$and": [{"$or": [{"state": "running"}, {"state": "finished"}]}]}
    response = admin.get(
        "/entities/admin/projects/proj/runs", params={"filters": json.dumps(shallow)}
    )
    assert [r["id"] for r in response.json()["runs"]] == ["d1"]
