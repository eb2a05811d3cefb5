"""Several trackd server replicas on one PostgreSQL database, and haproxy in front, for tests.

::

    with replicas(3, tmp_path / "files", pg_url) as servers, Haproxy(servers) as proxy:
        httpx.get(proxy.url + "/healthz")
        servers[1].kill()   # kill -9; haproxy's health checks take it out of the rotation
        servers[1].start()  # same port, same database, same files

Every replica is started the same way: the same database, the same admin key, the same
file store (``store_args``, e.g. a shared data dir); each has its own port and log file.
haproxy is Debian's package (``apt-get install -y haproxy``); a missing binary is an
error, not a skip. Its configuration is written from the replicas' ports: round robin,
``/healthz`` checks every 200 ms (out after two failures), and retries on connection failures.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests._support.server import START_TIMEOUT, STOP_TIMEOUT, ServerProcess, free_port

HAPROXY_CONFIG = """\
global
    maxconn 4096
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    timeout check 3s
    retries 3
    option redispatch
    retry-on conn-failure
frontend trackd
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 200ms fall 2 rise 1
{servers}
"""


@contextmanager
def replicas(
    count: int,
    data_dir: Path,
    db: str,
    store_args: Sequence[str] = (),
    store_env: dict[str, str] | None = None,
) -> Iterator[list[ServerProcess]]:
    """``count`` started replicas on database ``db`` sharing ``data_dir``; stopped at the end."""
    servers: list[ServerProcess] = []
    try:
        for index in range(count):
            server = ServerProcess(data_dir, db=db, args=store_args, env=store_env)
            if servers:
                server.admin_key = servers[0].admin_key  # one admin user for all
            server.log_path = data_dir.with_name(f"replica-{index}.log")
            server.launch()
            servers.append(server)
        for server in servers:  # started together, they share the machine's cores
            server.wait_healthy(START_TIMEOUT * count)
        yield servers
    finally:
        for server in servers:
            server.stop()


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        raise RuntimeError(
            "haproxy not found; the scale-out tests need Debian's package: "
            "apt-get install -y haproxy"
        )
    return found


class Haproxy:
    """haproxy on a loopback port in front of ``servers``: ``url``; ``stop()``."""

    def __init__(self, servers: Sequence[ServerProcess], folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        lines = [f"    server r{i} 127.0.0.1:{s.port}" for i, s in enumerate(servers)]
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "haproxy.cfg"
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, servers="\n".join(lines)))
        self.log_path = folder / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Haproxy:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [haproxy_binary(), "-db", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not _accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"haproxy did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
