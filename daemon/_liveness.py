"""Is a training process still alive? (pid reuse and zombies included)."""

from __future__ import annotations

import os


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":
        return -1  # a zombie has exited; only its parent has not reaped it yet
    return int(fields[19])


def is_alive(pid: int, ticks: int | None) -> bool:
    """True while ``pid`` runs and is the same process that had ``ticks`` as start time."""
    if os.path.isdir("/proc/self"):
        now = start_ticks(pid)
        if now is None or now == -1:
            return False
        return ticks is None or now == ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
