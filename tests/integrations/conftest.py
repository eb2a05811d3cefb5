"""Fixtures for the framework integration tests: one real server per test module (importing
a framework is slow, so each framework's tests share a module and a server), and the
environment that makes ``trackd.init`` upload to it.

::

    def test_something(online, remote):
        run = trackd.init(project="p")  # uploads to the module's server
        ...
        assert remote.run("p", run.id)["state"] == "finished"
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests._support.server import ServerProcess, running_server
from tests.e2e.conftest import Remote


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real trackd server (SQLite) shared by the tests of one module."""
    with running_server(tmp_path_factory.mktemp("server")) as started:
        yield started


@pytest.fixture
def online(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    """Runs started in this test upload to ``server``."""
    monkeypatch.setenv("TRACKD_BASE_URL", server.url)
    monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
    return server


@pytest.fixture
def remote(server: ServerProcess) -> Iterator[Remote]:
    """What the server holds, read through its API."""
    reader = Remote(server)
    yield reader
    reader.close()


def files(remote: Remote, project: str, run_id: str) -> list[str]:
    """The names of a run's files on the server."""
    listing = remote.get(f"/runs/admin/{project}/{run_id}/files")
    return sorted(f["name"] for f in listing["files"])


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    """``check()``'s first truthy result, polling for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
