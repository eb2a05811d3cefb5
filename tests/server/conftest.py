"""Fixtures for the server tests: the real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._support.objstore import LocalStore, S3Store
from tests._support.postgres import PostgresCluster, postgres_cluster
from tests._support.server import ServerProcess, running_server


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the session (fails, never skips, without the binaries)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_url(pg_cluster: PostgresCluster) -> str:
    return pg_cluster.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` (SQLite in the data dir) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.fresh_url()


@pytest.fixture
def server(
    tmp_path: Path, db_url: str | None, store: LocalStore | S3Store
) -> Iterator[ServerProcess]:
    """The server on ``db_url``, keeping files in ``store`` (see tests/conftest.py)."""
    with running_server(tmp_path / "server", db=db_url, args=store.args, env=store.env) as srv:
        yield srv


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
