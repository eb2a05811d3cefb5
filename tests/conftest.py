"""Fixtures shared by every test: a clean environment and private directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.objstore import LocalStore, MotoServer, S3Store, moto_server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No inherited TRACKD_* settings; daemon socket, run dirs and credentials in tmp."""
    for name in list(os.environ):
        if name.startswith("TRACKD_"):
            monkeypatch.delenv(name)
    # ipc socket paths are limited to ~107 bytes, so the daemon dir is short, not tmp_path.
    daemon_dir = tempfile.mkdtemp(prefix="trkd-")
    monkeypatch.setenv("TRACKD_DAEMON_DIR", daemon_dir)
    monkeypatch.setenv("TRACKD_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TRACKD_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TRACKD_SILENT", "1")
    # records a run gets beside what a test logs, at times no test controls: off unless a
    # test turns them on (tests/e2e/test_run_env.py), so runs hold exactly what tests log
    monkeypatch.setenv("TRACKD_SYSTEM_INTERVAL", "0")
    monkeypatch.setenv("TRACKD_ENVIRONMENT_FILES", "0")
    yield
    from trackd import _session

    _session.teardown()
    _stop_daemon(daemon_dir)
    shutil.rmtree(daemon_dir, ignore_errors=True)


def _stop_daemon(daemon_dir: str) -> None:
    """Kill a daemon a test left behind, so tests never share one."""
    import signal

    pid_file = Path(daemon_dir) / "daemon.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 emulator for the session (started only by tests that store files in S3)."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStore | S3Store:
    """Where the test's server keeps files: ``<data dir>/blobs`` (the default), or, when a test
    parametrizes ``store`` indirectly with ``"s3"``, a fresh bucket of :func:`moto`."""
    if getattr(request, "param", "local") == "s3":
        return S3Store(request.getfixturevalue("moto"))
    return LocalStore(tmp_path / "server" / "blobs", shared=False)
