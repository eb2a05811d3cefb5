"""A full disk under the run log: the daemon keeps running, acks nothing it could not store,
tells the training process why, and stores every record once space comes back."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trackd

from tests._support.procs import daemon_dir, daemon_pid, pid_alive, wait_for


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, mounted for real (root only, as the test machines run)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but for about ``leave`` bytes."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_full_disk_keeps_daemon_up_and_loses_nothing(small_disk: Path) -> None:
    filler = _fill(small_disk, 64 << 10)
    run = trackd.init(project="p", dir=str(small_disk))
    pid = daemon_pid()
    for step in range(20_000):  # about 1 MiB of records: more than the disk has left
        run.log({"loss": float(step), "acc": step * 0.5})
    log_file = daemon_dir() / "daemon.log"
    wait_for(lambda: "No space left" in log_file.read_text(), what="the daemon to hit ENOSPC")
    stream = run._stream
    assert stream is not None
    wait_for(lambda: stream.daemon_error, what="the error ack")
    assert "No space left on device" in (stream.daemon_error or "")
    time.sleep(1.5)  # the daemon retries meanwhile; it must not die doing so
    assert pid_alive(pid) and daemon_pid() == pid
    filler.unlink()
    run.finish()
    data = trackd.read_run(run.dir)
    assert [row["loss"] for row in data.history] == [float(s) for s in range(20_000)]
    assert data.torn_bytes == 0 and data.state == "finished"
    assert daemon_pid() == pid
