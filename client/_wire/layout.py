"""Where trackd's processes find each other's files: the daemon directory and a run directory.

The daemon directory (one per user; ``TRACKD_DAEMON_DIR``, else
``$XDG_RUNTIME_DIR/trackd-<uid>`` or ``/tmp/trackd-<uid>``), mode 0700 so only its user
reaches the socket::

    daemon.sock     the ZeroMQ ipc endpoint the daemon binds
    daemon.lock     held for as long as the daemon lives, with flock (one daemon per
                    directory) and with a POSIX lock (lockf) that clients query with
                    F_GETLK: "is it alive?" is one system call that takes no lock and
                    that neither a crashed daemon nor a zombie can fool
    daemon.pid      written once the socket is bound
    daemon.log      the daemon's own log
    spawn.lock      serialises clients that would start a daemon at the same time; held
                    until the new daemon holds daemon.lock
    uploads/        one entry per run with data still to upload (see ``upload_state``)

A run directory (``<TRACKD_DIR>/run-<time>-<id>``, or ``offline-run-...``; a labelled writer
of a shared run writes its own log in ``run-<time>-<id>@<writer>``)::

    run.trackd      the run log (see ``runlog``)
    spill-<pid>.trackd
                    records a training process could not hold in memory yet (same frames)
    upload.json     how far the upload got (see ``upload_state``)

Version 2 of this layout (version 1 daemons held daemon.lock with flock only, and clients
probed it by taking it for an instant).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import CommError

LAYOUT_VERSION = 2
SOCKET_NAME = "daemon.sock"
LOCK_NAME = "daemon.lock"
PID_NAME = "daemon.pid"
DAEMON_LOG_NAME = "daemon.log"
SPAWN_LOCK_NAME = "spawn.lock"
UPLOADS_DIR = "uploads"
RUN_LOG_NAME = "run.trackd"
PROGRESS_NAME = "upload.json"
RUN_DIR_PREFIXES = ("run", "offline-run")


def prepare_daemon_dir(path: Path) -> Path:
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


def endpoint(daemon_dir: Path) -> str:
    """The ZeroMQ address of the daemon serving ``daemon_dir``."""
    return f"ipc://{daemon_dir / SOCKET_NAME}"


def spill_path(run_dir: str | Path, pid: int) -> Path:
    """The spill file of training process ``pid`` in ``run_dir``."""
    return Path(run_dir) / f"spill-{pid}.trackd"


def stream_key(run_id: str, writer: str = "") -> str:
    """What names one writer's log of a run in the daemon (its slot, its upload entry):
    the run id for the only (or unlabelled) writer, ``<run id>@<writer>`` for a labelled
    one (``@`` is in neither a run id nor a label)."""
    return f"{run_id}@{writer}" if writer else run_id


def run_dir_name(prefix: str, stamp: str, run_id: str, writer: str = "") -> str:
    """``run-20261124_101500-k3x9q2ma`` (``...-k3x9q2ma@rank-3`` for a labelled writer):
    the name of a new run directory."""
    return f"{prefix}-{stamp}-{stream_key(run_id, writer)}"


def is_run_dir_of(name: str, run_id: str, writer: str = "") -> bool:
    """Whether a directory called ``name`` holds writer ``writer``'s log of run ``run_id``
    (not ``exp-1`` for ``1``, nor another writer's)."""
    for prefix in RUN_DIR_PREFIXES:
        if name.startswith(prefix + "-"):
            stamp, sep, rest = name[len(prefix) + 1 :].partition("-")
            return bool(sep) and rest == stream_key(run_id, writer)
    return False
