"""The daemon's view of one run that a training process is writing."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from trackd._wire import records as p
from trackd._wire.layout import RUN_LOG_NAME, spill_path
from trackd._wire.runlog import MAX_FRAME, stream_frames

from ._liveness import is_alive, start_ticks
from ._log_writer import RunLogWriter

log = logging.getLogger("trackd.daemon")
CRASH_GRACE = 0.5  # seconds of draining after a client is found dead, before marking crashed


class RunSlot:
    """A run being written: its log writer and the client process that feeds it."""

    def __init__(self, attach: p.Attach, identity: bytes) -> None:
        self.run_id = attach.run_id
        self.run_dir = Path(attach.run_dir)
        self.writer = RunLogWriter(self.run_dir / RUN_LOG_NAME)
        if self.writer.truncated:
            log.warning("run %s: cut a torn tail of %d bytes", self.run_id, self.writer.truncated)
        self.identity = identity
        self.pid = attach.pid
        self.ticks = start_ticks(attach.pid)
        self.finished = False
        self.dead_since: float | None = None
        self.flush_requested = False
        self.disk_error: str | None = None  # why the log cannot be written right now
        self.crash_marked = False

    def reattach(self, attach: p.Attach, identity: bytes) -> None:
        self.identity = identity
        if attach.pid != self.pid:
            self.pid, self.ticks = attach.pid, start_ticks(attach.pid)
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
        """Records a dead client left in its spill file; returns how many were new."""
        path = spill_path(str(self.run_dir), self.pid)
        added = 0
        try:
            with open(path, "rb") as f:
                for payload, _end in stream_frames(f, 0):
                    fields = stored_fields(payload)
                    if fields is not None and self.accept(fields[2], fields[0], payload):
                        added += 1
        except OSError:
            return added
        path.unlink(missing_ok=True)
        return added

    def mark_crashed(self) -> None:
        self.crash_marked = True
        seq = self.writer.last_seq + 1
        record = p.Finish(p.FINISH, self.run_id, seq, "crashed", None, time.time())
        self.accept(seq, p.FINISH, p.encode(record))


def stored_fields(payload: bytes) -> list[Any] | None:
    """The decoded array of a well-formed stored record, or None for anything else."""
    try:
        fields = p.unpack(payload)
    except p.DecodeError:
        return None
    return fields if p.is_stored(fields) else None
