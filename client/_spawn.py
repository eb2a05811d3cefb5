"""Finding, and if need be starting, this user's trackd daemon.

The daemon directory's files (socket, lock, pid, log, spawn lock) are described in
:mod:`trackd._wire.layout`. "Is it alive?" asks the kernel whether ``daemon.lock`` is
locked (the daemon holds it for as long as it lives); the question takes no lock.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

from ._wire.layout import (
    DAEMON_LOG_NAME,
    LOCK_NAME,
    PID_NAME,
    SPAWN_LOCK_NAME,
    prepare_daemon_dir,
)
from .errors import CommError

READY_TIMEOUT = 20.0
_FLOCK = struct.Struct("hhqqi4x")  # Linux's struct flock: type, whence, start, len, pid
# Daemons this process started. Kept for the life of the process: poll() reaps one that
# exits, and a Popen dropped while its daemon still runs would warn about it.
_CHILDREN: list[subprocess.Popen[bytes]] = []


@atexit.register
def _let_daemons_go() -> None:
    """At exit: reap the daemons that ended; the ones still serving outlive this process on
    purpose (they are in a session of their own), so their Popen objects are let go quietly."""
    for popen in _CHILDREN:
        if popen.poll() is None:
            popen.returncode = 0  # not ours to wait for; keeps Popen.__del__ from warning


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
    """Whether a live daemon holds ``fd``'s file: a query of its POSIX lock (F_GETLK).

    A query takes no lock, so a client stopped (SIGSTOP, ctrl-Z) in the middle of one can
    never keep a new daemon from taking the file."""
    query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    return bool(_FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)


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


def ensure_daemon(path: Path, wait: bool = True) -> DaemonHandle | None:
    """The running daemon for ``path``, starting one if there is none.

    Starting one holds ``spawn.lock`` until the new daemon holds ``daemon.lock`` (or has
    exited), so a burst of clients starts exactly one daemon. With ``wait=False`` (the
    transport's I/O thread) another process starting a daemon right now is not waited for:
    the answer is None, and the caller looks again later.
    """
    prepare_daemon_dir(path)
    fd = os.open(path / SPAWN_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return None
        if daemon_running(path):
            pid = _wait_pid(path, None, READY_TIMEOUT)
            return DaemonHandle(path, pid, None)
        popen = _spawn(path)
        _CHILDREN.append(popen)
        return DaemonHandle(path, _wait_pid(path, popen, READY_TIMEOUT), popen)
    finally:
        os.close(fd)


def _spawn(path: Path) -> subprocess.Popen[bytes]:
    try:
        (path / PID_NAME).unlink()
    except FileNotFoundError:
        pass
    err = open(path / DAEMON_LOG_NAME, "ab")  # noqa: SIM115 - the child inherits it
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
    """The pid of the daemon holding ``daemon.lock``, once it has bound its socket."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _read_pid(path)
        if pid is not None and (popen is None or pid == popen.pid):
            return pid
        if popen is not None and popen.poll() is not None:
            break
        if popen is None and not daemon_running(path):
            break  # the daemon we saw has gone; the caller starts another
        time.sleep(0.01)
    raise CommError(
        f"the trackd daemon did not start within {timeout:.0f} s; "
        f"see its log at {path / DAEMON_LOG_NAME}:\n{_log_tail(path)}"
    )


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = (path / DAEMON_LOG_NAME).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
