"""The real trackd server in a subprocess, on a loopback port, for tests.

::

    with running_server(tmp_path / "server") as server:
        httpx.get(server.url + "/healthz")
        server.stop()   # e.g. a fault test: the server is down for a while
        server.start()  # same port, same data dir, same admin key

The admin key is chosen here and passed as ``TRACKD_ADMIN_KEY``, so tests know it. The
server's stdout and stderr go to ``<data dir>.log``; a server that does not come up raises
with the tail of that log.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(admin_key: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    env["TRACKD_ADMIN_KEY"] = admin_key
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    """One trackd server: ``start()``, ``stop()``, ``kill()``; ``url``, ``admin_key``."""

    def __init__(
        self,
        data_dir: Path,
        db: str | None = None,
        args: Sequence[str] = (),
        port: int | None = None,
        env: dict[str, str] | None = None,
        admin_key: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.db = db
        self.args = list(args)
        self._pick_port = port is None  # until the first start: a port taken meanwhile is re-picked
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # a server on a database that already has its admin takes that admin's key
        self.admin_key = admin_key or "trk_" + secrets.token_urlsafe(30)
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "trackd.server", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.db:
            cmd += ["--db", self.db]
        return cmd + self.args

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait until it answers (see :meth:`_answers_as_itself`).

        On the first start of a server whose port :func:`free_port` picked, a port that
        another process took in the meantime is replaced by a new one."""
        for attempt in range(3):
            self.launch()
            try:
                self.wait_healthy(timeout)
            except RuntimeError:
                if not (self._pick_port and attempt < 2 and self._lost_the_port()):
                    raise
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
                continue
            self._pick_port = False
            return

    def _lost_the_port(self) -> bool:
        return (
            self.proc is not None
            and self.proc.poll() is not None
            and ("address already in use" in self.log_tail().lower())
        )

    def launch(self) -> None:
        """Start the server process (:meth:`wait_healthy` waits until it answers)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"the trackd server on {self.url} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(self.admin_key, self.env),
            )

    def wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the trackd server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self._answers_as_itself():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the trackd server did not answer in {timeout}s:\n{self.log_tail()}")

    def _answers_as_itself(self) -> bool:
        """True once ``/healthz`` answers from a socket this server's process (or one of
        its workers) listens on.

        Ports come from :func:`free_port`, so another test's server can hold the same port
        for a moment (ours then exits on the bind); that one answers ``/healthz`` too, and
        must never be taken for ours."""
        try:
            if httpx.get(self.url + "/healthz", timeout=1.0).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
        return self._listens_here()

    def _listens_here(self) -> bool:
        assert self.proc is not None
        try:
            root = psutil.Process(self.proc.pid)
            for proc in [root, *root.children(recursive=True)]:
                # net_connections() since psutil 6; connections() before it (the floor is 5.9)
                listing = getattr(proc, "net_connections", None) or proc.connections
                for conn in listing(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr.port == self.port:
                        return True
        except psutil.Error:
            return False
        return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def client(self, key: str | None = None, **kwargs: object) -> httpx.Client:
        """An httpx client for ``/api/v1`` using ``key`` (the admin key by default)."""
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running_server(
    data_dir: Path,
    db: str | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    admin_key: str | None = None,
) -> Iterator[ServerProcess]:
    """A started :class:`ServerProcess` (``env``: extra variables), stopped at the end."""
    server = ServerProcess(data_dir, db=db, args=args, env=env, admin_key=admin_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()
