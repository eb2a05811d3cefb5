"""Fixtures for the upload fault tests: a real server, a FaultProxy in front of it, and the
environment that makes ``trackd.init`` upload through the proxy.

::

    def test_something(proxy, remote):
        proxy.down()                    # the server vanishes, as far as the daemon can tell
        run = trackd.init(project="p")  # uploads go to proxy.url
        ...
        assert remote.run("p", run.id)["state"] == "finished"

``upstream`` is SQLite unless a test parametrizes it indirectly with ``"postgres"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from tests._support.faultproxy import FaultProxy
from tests._support.objstore import LocalStore, S3Store
from tests._support.postgres import PostgresCluster, postgres_cluster
from tests._support.server import ServerProcess, running_server

BATCH_SECONDS = "0.2"  # batches go out quickly, so the tests are quick


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the session (fails, never skips, without the binaries)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def upstream(
    request: pytest.FixtureRequest, tmp_path: Path, store: LocalStore | S3Store
) -> Iterator[ServerProcess]:
    """The real trackd server: SQLite, or a fresh PostgreSQL database when parametrized so;
    its files in ``store`` (see tests/conftest.py)."""
    db = getattr(request, "param", "sqlite")
    url = None
    if db == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        url = cluster.fresh_url()
    with running_server(tmp_path / "server", db=url, args=store.args, env=store.env) as server:
        yield server


@pytest.fixture
def proxy(upstream: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A FaultProxy in front of ``upstream``; trackd in this test uploads through it."""
    with FaultProxy(upstream.port) as fault_proxy:
        monkeypatch.setenv("TRACKD_BASE_URL", fault_proxy.url)
        monkeypatch.setenv("TRACKD_API_KEY", upstream.admin_key)
        monkeypatch.setenv("TRACKD_BATCH_SECONDS", BATCH_SECONDS)
        yield fault_proxy


class Remote:
    """What the server holds, read straight from it (never through the proxy)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self._client = httpx.Client(
            base_url=server.url + "/api/v1",
            headers={
                "Authorization": f"Bearer {server.admin_key}",
                "Accept": "application/msgpack",  # exact floats, unlike JSON
            },
            timeout=30,
            trust_env=False,
        )

    def get(self, path: str) -> Any:
        response = self._client.get(path)
        response.raise_for_status()
        return msgpack.unpackb(response.content, raw=False, strict_map_key=False)

    def run(self, project: str, run_id: str) -> dict[str, Any] | None:
        """The run's document, or None while the server does not know the run."""
        response = self._client.get(f"/runs/admin/{project}/{run_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        doc = msgpack.unpackb(response.content, raw=False, strict_map_key=False)
        assert isinstance(doc, dict)
        return doc

    def history(self, project: str, run_id: str) -> list[dict[str, Any]]:
        rows = self.get(f"/runs/admin/{project}/{run_id}/history")
        assert isinstance(rows, list)
        return rows

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def remote(upstream: ServerProcess) -> Iterator[Remote]:
    reader = Remote(upstream)
    yield reader
    reader.close()
