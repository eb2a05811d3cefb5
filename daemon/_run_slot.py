"""The daemon's view of one run that a training process is writing."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from trackd._wire import records as p
from trackd._wire.layout import RUN_LOG_NAME, spill_path, stream_key
from trackd._wire.runlog import HEADER, MAX_FRAME, check_header, stream_frames

from ._liveness import is_alive, start_ticks
from ._log_writer import RunLogWriter

log = logging.getLogger("trackd.daemon")
CRASH_GRACE = 0.5  # seconds of draining after a client is found dead, before marking crashed


class RunSlot:
    """A run being written: its log writer and the client process that feeds it."""

    def __init__(self, attach: p.Attach, identity: bytes, run_dir: Path) -> None:
        self.run_id = attach.run_id
        self.label = attach.writer  # the writer label in a shared run ("" = the only one)
        self.key = stream_key(attach.run_id, attach.writer)
        self.run_dir = run_dir
        self.writer = RunLogWriter(self.run_dir / RUN_LOG_NAME)
        if self.writer.truncated:
            log.warning("run %s: cut a torn tail of %d bytes", self.run_id, self.writer.truncated)
        self.identity = identity
        self.pid = attach.pid
        self.host = attach.host
        self.ticks = start_ticks(attach.pid)
        self.finished = False
        self.dead_since: float | None = None
        self.flush_requested = False
        self.disk_error: str | None = None  # why the log cannot be written right now
        self.crash_marked = False
        for pid in _spill_pids(run_dir):  # an earlier writer left records in its spill file
            if pid != attach.pid and not is_alive(pid, None):
                self._recover_spill(pid)
        self.finished = False  # a recovered Finish ended that attempt, not this one

    def held_by_other(self, attach: p.Attach) -> bool:
        """Whether another live, unfinished process writes this run."""
        same = attach.pid == self.pid and (attach.host or "") == (self.host or "")
        return not same and not self.finished and self.client_alive()

    def reattach(self, attach: p.Attach, identity: bytes) -> None:
        self.identity = identity
        if attach.pid != self.pid:
            if not self.client_alive():
                self.recover_spill()  # the last writer died with records in its spill file
            self.pid, self.ticks = attach.pid, start_ticks(attach.pid)
        self.host = attach.host
        self.finished = False
        self.dead_since = None

    def accept(self, seq: int, kind: int, payload: bytes) -> bool:
        """Append a stored record unless its seq is already in the log (or it is larger
        than a frame may be: readers would take it for a torn tail)."""
        if seq <= self.writer.last_seq:
            return False
        if len(payload) > MAX_FRAME:
            log.error("run %s: dropped record seq %d of %d bytes", self.run_id, seq, len(payload))
            return False
        self.writer.append(seq, payload)
        if kind == p.FINISH:
            self.finished = True
        return True

    def client_alive(self) -> bool:
        return is_alive(self.pid, self.ticks)

    def recover_spill(self) -> int:
        """Records the dead client left in its spill file; returns how many were new."""
        return self._recover_spill(self.pid)

    def _recover_spill(self, pid: int) -> int:
        path = spill_path(str(self.run_dir), pid)
        added = 0
        try:
            with open(path, "rb") as f:
                for payload, _end in stream_frames(f, 0):
                    fields = stored_fields(payload)
                    if fields is not None and self.accept(fields[2], fields[0], payload):
                        added += 1
            self.writer.sync()  # durable before the only other copy goes
        except OSError:
            return added
        path.unlink(missing_ok=True)
        return added

    def mark_crashed(self) -> None:
        if self.finished:
            return  # its spill file held its own Finish
        self.crash_marked = True
        seq = self.writer.last_seq + 1
        record = p.Finish(p.FINISH, self.run_id, seq, "crashed", None, time.time())
        self.accept(seq, p.FINISH, p.encode(record))


def recover_spills(run_id: str, run_dir: Path) -> None:
    """Store in the run log what dead writers of a run left in spill files (a finish()
    that timed out keeps its records there); ``trackd sync`` does this before uploading."""
    if not (run_dir / RUN_LOG_NAME).exists() or not _spill_pids(run_dir):
        return
    nobody = p.Attach(p.ATTACH, run_id, 0, str(run_dir), 0, 1)  # pid 0: no writer now
    RunSlot(nobody, b"", run_dir).writer.close()  # its constructor stores the spill files


def writer_of(run_dir: Path) -> str:
    """The writer label of the run log in ``run_dir`` (from its first record, a RunStart);
    ``""`` when it has none, or the log cannot be read."""
    try:
        with open(run_dir / RUN_LOG_NAME, "rb") as f:
            check_header(f.read(HEADER.size), str(run_dir))
            for payload, _end in stream_frames(f, HEADER.size):
                fields = stored_fields(payload)
                if fields is not None and fields[0] == p.RUN_START:
                    writer = p.from_fields(fields).writer  # type: ignore[union-attr]
                    return writer if isinstance(writer, str) else ""
                return ""
    except (OSError, ValueError):
        return ""
    return ""


def _spill_pids(run_dir: Path) -> list[int]:
    pids = []
    for path in run_dir.glob("spill-*.trackd"):
        try:
            pids.append(int(path.name[len("spill-") : -len(".trackd")]))
        except ValueError:
            continue
    return sorted(pids)


def stored_fields(payload: bytes) -> list[Any] | None:
    """The decoded array of a well-formed stored record, or None for anything else."""
    try:
        fields = p.unpack(payload)
    except p.DecodeError:
        return None
    return fields if p.is_stored(fields) else None
