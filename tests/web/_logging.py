"""Logging runs for real in a separate process (``_log_runs.py``), for tests and bench/ui.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests._support.server import ServerProcess

LOGGER = Path(__file__).with_name("_log_runs.py")


def log_runs(server: ServerProcess, key: str, workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start ``_log_runs.py args`` logging to ``server`` with ``key``, in its own daemon dir."""
    daemon_dir = tempfile.mkdtemp(prefix="trkd-")  # short: ipc socket paths are limited
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    env.update(
        TRACKD_BASE_URL=server.url,
        TRACKD_API_KEY=key,
        TRACKD_DIR=str(workdir / "runs"),
        TRACKD_CONFIG_DIR=str(workdir / "config"),
        TRACKD_DAEMON_DIR=daemon_dir,
        TRACKD_BATCH_SECONDS="0.1",
        TRACKD_DAEMON_IDLE_TIMEOUT="3",
        TRACKD_SILENT="1",
    )
    proc = subprocess.Popen([sys.executable, str(LOGGER), *args], env=env)
    proc.daemon_dir = daemon_dir  # type: ignore[attr-defined]
    return proc


def finish_logging(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait for the logging script, then stop the daemon it started."""
    try:
        assert proc.wait(timeout) == 0, "the logging script failed; see its output above"
    finally:
        daemon_dir = Path(proc.daemon_dir)  # type: ignore[attr-defined]
        try:
            os.kill(int((daemon_dir / "daemon.pid").read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(daemon_dir, ignore_errors=True)
