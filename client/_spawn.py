"""Finding, and if need be starting, this user's trackd daemon.

The daemon lives in a per-user directory (mode 0700, so its socket is reachable by that user
alone) holding ``daemon.sock`` (the ZeroMQ ipc endpoint), ``daemon.lock`` (held with
``flock`` for as long as the daemon lives, which makes "is it alive?" one system call that
a crashed daemon or a zombie cannot fool), ``daemon.pid`` (written once the socket is bound)
and ``daemon.log``. ``spawn.lock`` serialises processes that would start one at once.
"""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from .errors import CommError

SOCKET_NAME = "daemon.sock"
LOCK_NAME = "daemon.lock"
PID_NAME = "daemon.pid"
LOG_NAME = "daemon.log"
SPAWN_LOCK_NAME = "spawn.lock"
READY_TIMEOUT = 20.0
# Daemons this process started. Kept for the life of the process: poll() reaps one that
# exits, and a Popen dropped while its daemon still runs would warn about it.
_CHILDREN: list[subprocess.Popen[bytes]] = []


def prepare_dir(path: Path) -> Path:
    """Create the daemon directory private to this user, or refuse one that is not."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise CommError(
            f"daemon directory {path} belongs to uid {info.st_uid}, not to you; "
            "set TRACKD_DAEMON_DIR to a directory of your own"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def endpoint(path: Path) -> str:
    return f"ipc://{path / SOCKET_NAME}"


class DaemonHandle:
    """The daemon a client talks to, and a cheap way to ask whether it still lives."""

    def __init__(self, path: Path, pid: int, popen: subprocess.Popen[bytes] | None) -> None:
        self.path = path
        self.pid = pid
        self.popen = popen
        self._lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)

    def alive(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            return False
        return _held_by_another(self._lock_fd)

    def close(self) -> None:
        try:
            os.close(self._lock_fd)
        except OSError:
            pass


def _held_by_another(fd: int) -> bool:
    """Whether someone else holds the lock on ``fd``'s file: one probe, released at once."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def daemon_running(path: Path) -> bool:
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        return _held_by_another(fd)
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        return int((path / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def ensure_daemon(path: Path, wait_ready: bool = True) -> DaemonHandle:
    """The running daemon for ``path``, starting one if there is none.

    With ``wait_ready=False`` the caller does not wait for a new daemon to bind its socket:
    ZeroMQ queues messages until it does, so a training thread never waits for a respawn.
    """
    prepare_dir(path)
    fd = os.open(path / SPAWN_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if daemon_running(path):
            pid = _wait_pid(path, None, READY_TIMEOUT)
            return DaemonHandle(path, pid, None)
        popen = _spawn(path)
        _CHILDREN.append(popen)
        pid = _wait_pid(path, popen, READY_TIMEOUT) if wait_ready else popen.pid
        return DaemonHandle(path, pid, popen)
    finally:
        os.close(fd)


def _spawn(path: Path) -> subprocess.Popen[bytes]:
    try:
        (path / PID_NAME).unlink()
    except FileNotFoundError:
        pass
    err = open(path / LOG_NAME, "ab")  # noqa: SIM115 - the child inherits it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "trackd.daemon", "--dir", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,  # outlive the training process and its signals
            close_fds=True,
            cwd="/",
        )
    except OSError as exc:
        raise CommError(f"could not start the trackd daemon: {exc}") from exc
    finally:
        err.close()


def _wait_pid(path: Path, popen: subprocess.Popen[bytes] | None, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _read_pid(path)
        if pid is not None and (popen is None or pid == popen.pid):
            return pid
        if popen is not None and popen.poll() is not None:
            break
        time.sleep(0.01)
    raise CommError(
        f"the trackd daemon did not start within {timeout:.0f} s; "
        f"see its log at {path / LOG_NAME}:\n{_log_tail(path)}"
    )


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = (path / LOG_NAME).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
