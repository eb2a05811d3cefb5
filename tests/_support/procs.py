"""Helpers for tests that drive real training processes and the real daemon."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trackd


def run_script(
    code: str, tmp_path: Path, timeout: float = 60, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a training script in a fresh interpreter with the test's environment."""
    script = tmp_path / f"script_{time.monotonic_ns()}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=os.environ.copy(),
        **popen,
    )


def start_script(
    code: str, tmp_path: Path, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """Run ``code`` (dedented) as a script in ``tmp_path``, with ``env`` added to ours."""
    script = tmp_path / f"script_{time.monotonic_ns()}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, **(env or {})),
        **popen,
    )


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def daemon_dir() -> Path:
    return Path(os.environ["TRACKD_DAEMON_DIR"])


def daemon_pid() -> int:
    return int((daemon_dir() / "daemon.pid").read_text())


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def only_run_dir() -> Path:
    runs = sorted(Path(os.environ["TRACKD_DIR"]).glob("*run-*"))
    assert len(runs) == 1, runs
    return runs[0]


def read_when(run_dir: Path, state: str, timeout: float = 15.0) -> trackd.RunData:
    def check() -> trackd.RunData | None:
        data = trackd.read_run(run_dir)
        return data if data.state == state else None

    return wait_for(check, timeout, f"run {run_dir.name} to be {state}")
