"""A throwaway PostgreSQL 15 cluster for the test session.

PostgreSQL refuses to run as root, so the cluster lives in a temp dir owned by the
``postgres`` user and its tools run through ``runuser``. It listens on a free loopback port
(and a Unix socket in its own dir) and is stopped with ``-m immediate`` and removed at the end.
Missing binaries are an error, not a skip: CI installs Debian's ``postgresql`` package.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests._support.server import free_port

PG_BIN = Path(os.environ.get("TRACKD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"


class PostgresMissing(RuntimeError):
    pass


def _run(*cmd: str) -> None:
    result = subprocess.run(
        ["runuser", "-u", USER, "--", *cmd], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")


class PostgresCluster:
    """A running cluster: ``url`` of its ``trackd`` database, and fresh databases on demand."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.url = f"postgresql://{USER}@127.0.0.1:{port}/trackd"
        self._names = itertools.count(1)

    def create_database(self, name: str) -> str:
        _run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name)
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def fresh_url(self) -> str:
        """The URL of a new, empty database (one per test keeps tests independent)."""
        return self.create_database(f"trackd_test_{next(self._names)}")


def check_binaries() -> None:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        raise PostgresMissing(
            f"PostgreSQL 15 binaries not found in {PG_BIN}; the trackd server tests need them. "
            "Install Debian's package: apt-get install -y postgresql"
        )


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a cluster, yield it, stop and remove it."""
    check_binaries()
    root = Path(tempfile.mkdtemp(prefix="trackd-pg-"))
    shutil.chown(root, USER, USER)
    data = root / "data"
    port = free_port()
    _run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run(
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "pg.log"),
        "-w",
        "start",
    )
    try:
        cluster = PostgresCluster(root, port)
        cluster.create_database("trackd")
        yield cluster
    finally:
        try:
            _run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)
