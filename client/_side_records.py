"""Records a run gets besides what the script logs: console output, system-metrics samples and
the environment's files.

They are written from other threads than the training thread: console lines and samples by
the transport's I/O thread (:class:`SideRecords` is the stream's ``on_turn`` and
``on_sample``), the requirements and diff files by a short-lived thread started at
``init()``. Each takes the run's lock for the moment it allocates a seq and appends the
record, so the run keeps one seq order and one writer per run log.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from . import _console, _environment
from ._wire import records as p

if TYPE_CHECKING:
    from ._run import Run

OUTPUT_INTERVAL = 0.1  # seconds between drains of the console buffer
ENV_FILES_TIMEOUT = 10.0  # finish() waits this long for requirements.txt and diff.patch
log = logging.getLogger("trackd")


class SideRecords:
    """One run's console capture, system samples and environment files."""

    def __init__(self, run: Run, console: bool, system: bool) -> None:
        self.run = run
        self.system = system
        self.capture = _console.start() if console else None
        self._next_drain = 0.0
        self._drain_lock = threading.Lock()  # one drain at a time keeps lines in order
        self._env_thread: threading.Thread | None = None

    # -- on the transport's I/O thread ---------------------------------------------------
    def on_turn(self, now: float) -> None:
        """Store the complete lines printed since the last drain."""
        if self.capture is None or now < self._next_drain:
            return
        self._next_drain = now + OUTPUT_INTERVAL
        self._drain(self.capture, final=False)

    def on_sample(self, sample: p.Sample) -> None:
        """The daemon's sampler measured this process: store it as a ``SystemStats``."""
        if not self.system or not isinstance(sample.data, dict):
            return
        run = self.run
        with run._lock:
            if run._is_running():
                seq = run._next_seq()
                stats = p.SystemStats(p.SYSTEM_STATS, run.id, seq, float(sample.time), sample.data)
                run._emit_record(stats)

    def _drain(self, capture: _console.Capture, final: bool) -> None:
        with self._drain_lock:
            chunks = capture.take(final)
            if chunks:
                self._store_output(chunks)

    def _store_output(self, chunks: list[tuple[float, str, str]]) -> None:
        run = self.run
        with run._lock:
            if not run._is_running():
                return
            for when, stream, text in chunks:
                run._emit_record(p.Output(p.OUTPUT, run.id, run._next_seq(), when, stream, text))

    # -- environment files ---------------------------------------------------------------
    def save_environment(self, git: _environment.Git) -> None:
        """Write and save ``requirements.txt`` (and ``diff.patch``) off the training thread."""
        self._env_thread = threading.Thread(
            target=self._environment_files, args=(git,), name="trackd-env", daemon=True
        )
        self._env_thread.start()

    def _environment_files(self, git: _environment.Git) -> None:
        run = self.run
        try:
            files = _environment.write_files(run.dir, git)
        except OSError as exc:
            log.warning("trackd: run %s: the environment files were not written: %s", run.id, exc)
            return
        with run._lock:
            if run._is_running():
                for name, path in files:
                    run._emit_record(p.File(p.FILE, run.id, run._next_seq(), name, path, "now"))

    # -- at finish (training thread, before the Finish record) ---------------------------
    def close(self) -> None:
        """Called without the run's lock held. Wait (bounded) for the environment files; store the last console lines."""
        if self._env_thread is not None:
            self._env_thread.join(ENV_FILES_TIMEOUT)
        if self.capture is not None:
            _console.stop(self.capture)
            self._drain(self.capture, final=True)
