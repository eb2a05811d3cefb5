"""Getting records from the training process to the daemon without ever waiting.

``send()`` appends an encoded record to the run's open batch. A batch (msgpack records back
to back, no other framing) goes to a ZeroMQ DEALER socket with ``NOBLOCK`` when it holds
``BATCH_RECORDS`` records or is ``BATCH_SECONDS`` old (a small flusher thread sees to the
latter when the script stops logging); ZeroMQ's own I/O thread (C++, outside the GIL) writes
it to the daemon's ipc socket. Batching saves a ZeroMQ call per record in the training
process and a receive per record in the daemon. Each batch stays in a per-run in-memory
queue until the daemon acks it as durable (written and fsynced to the run log). That queue is what makes a daemon crash lossless: when the daemon
is found dead, a new one is started, the run is re-attached and every unacked record is
sent again; the daemon drops sequence numbers it already has, so nothing is doubled.

Memory is bounded by ``queue_bytes`` (unacked records, all runs of the process). Past it,
records are appended to a spill file in the run directory (same frame format as the run
log) and sent from there once acks free memory, so the training thread still does not wait.
If the training process dies while records sit in the spill file, the daemon reads them
from there.

Acks are read and the daemon's liveness is checked at most every ``SERVICE_INTERVAL``
seconds, from inside ``send()`` (a cheap clock comparison otherwise).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from ._spawn import DaemonHandle, ensure_daemon
from ._wire import records as p
from ._wire.layout import endpoint, spill_path
from ._wire.runlog import frame, iter_frames
from .errors import UsageError

SERVICE_INTERVAL = 0.2
BATCH_RECORDS = 64
BATCH_SECONDS = 0.01
UNREACHABLE_AFTER = 5.0
_ABANDONED: list[Any] = []  # zmq objects inherited over fork(); never touched, never freed
_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()


class _Spill:
    """Records not yet handed to ZeroMQ, in order, on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.read_offset = 0
        self.count = 0

    def append(self, payload: bytes) -> None:
        os.write(self.fd, frame(payload))
        self.count += 1

    def take(self, max_bytes: int) -> list[bytes]:
        """Up to ``max_bytes`` of payloads from the front; empties the file when drained."""
        size = os.fstat(self.fd).st_size
        data = os.pread(
            self.fd, min(size - self.read_offset, max_bytes + (1 << 16)), self.read_offset
        )
        out: list[bytes] = []
        taken = 0
        for payload, end in iter_frames(data, 0):
            out.append(payload)
            taken = end
            if taken >= max_bytes:
                break
        self.read_offset += taken
        self.count -= len(out)
        if self.count == 0:
            os.ftruncate(self.fd, 0)
            self.read_offset = 0
        return out

    def close(self, remove: bool) -> None:
        os.close(self.fd)
        if remove:
            self.path.unlink(missing_ok=True)


class Stream:
    """One run's records on their way to the daemon."""

    __slots__ = (
        "attach",
        "run_id",
        "unacked",
        "acked",
        "spill",
        "error",
        "batch",
        "batch_seq",
        "uploaded",
        "upload_note",
        "upload_failed",
        "rejected",
        "daemon_error",
    )

    def __init__(self, attach: p.Attach) -> None:
        self.attach = attach
        self.run_id = attach.run_id
        self.unacked: deque[tuple[int, bytes]] = deque()  # (last seq, batch) sent, not acked
        self.batch: list[bytes] = []  # records not sent yet
        self.batch_seq = 0  # seq of the batch's last record
        self.acked = attach.first_seq - 1
        self.spill: _Spill | None = None
        self.uploaded = -1  # the server's durable seq, as the daemon last reported it
        self.upload_note: str | None = None
        self.upload_failed = False
        self.rejected: list[tuple[int, str]] = []  # records the server refused: (seq, why)
        self.daemon_error: str | None = None  # why the daemon cannot store records now

    @property
    def pending(self) -> int:
        spilled = self.spill.count if self.spill else 0
        return len(self.unacked) + len(self.batch) + spilled


class Transport:
    """This process's connection to the daemon, shared by all its runs."""

    def __init__(self, daemon_dir: Path, queue_bytes: int) -> None:
        self.daemon_dir = daemon_dir
        self.queue_bytes = queue_bytes
        self.pid = os.getpid()
        self.forked = False
        self._lock = threading.RLock()
        self._streams: dict[str, Stream] = {}
        self._unacked_bytes = 0
        self._next_service = 0.0
        self._next_flush = 0.0
        self._ctx = zmq.Context(io_threads=1)
        self._daemon: DaemonHandle = ensure_daemon(daemon_dir)
        self._sock = self._connect()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="trackd-flush", daemon=True)
        self._flusher.start()
        _TRANSPORTS.add(self)

    def _connect(self) -> zmq.Socket[bytes]:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, 0)  # our own byte bound applies, see module doc
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.connect(endpoint(self.daemon_dir))
        self._sock_send = sock.send
        return sock

    # -- streams -----------------------------------------------------------------------
    def open_stream(self, attach: p.Attach) -> Stream:
        with self._lock:
            self._check_fork()
            stream = Stream(attach)
            self._streams[attach.run_id] = stream
            self._sock.send(p.encode(attach))
            return stream

    def open_sync(self, run_id: str, run_dir: str, upload: p.UploadTarget) -> Stream:
        """Ask the daemon to upload an existing run log; progress arrives as acks."""
        with self._lock:
            self._check_fork()
            stream = Stream(p.Attach(p.ATTACH, run_id, 0, run_dir, self.pid, 1, "sync", upload))
            self._streams[run_id] = stream
            self._sock.send(p.encode(p.Sync(p.SYNC, run_id, 0, run_dir, upload)))
            return stream

    def has_streams(self) -> bool:
        return bool(self._streams)

    def close_stream(self, stream: Stream) -> None:
        with self._lock:
            self._streams.pop(stream.run_id, None)
            self._unacked_bytes -= sum(len(batch) for _seq, batch in stream.unacked)
            self._unacked_bytes -= sum(len(payload) for payload in stream.batch)
            stream.unacked.clear()
            stream.batch.clear()
            if stream.spill is not None:
                stream.spill.close(remove=stream.spill.count == 0)
                stream.spill = None

    # -- the hot path ------------------------------------------------------------------
    def send(self, stream: Stream, seq: int, payload: bytes, now: float) -> None:
        """Hand one encoded record to the daemon; never blocks on the daemon."""
        if stream.spill is None and self._unacked_bytes < self.queue_bytes and not self.forked:
            batch = stream.batch
            batch.append(payload)
            stream.batch_seq = seq
            self._unacked_bytes += len(payload)
            if len(batch) >= BATCH_RECORDS:
                self._send_batch(stream)
            elif len(batch) == 1:
                self._next_flush = now + BATCH_SECONDS
        else:
            self._send_slow(stream, payload)
        if now >= self._next_service:
            self.service(now)

    def _send_batch(self, stream: Stream) -> None:
        blob = b"".join(stream.batch)
        stream.batch.clear()
        self._sock_send(blob, zmq.NOBLOCK)
        stream.unacked.append((stream.batch_seq, blob))

    def flush_batches(self) -> None:
        """Send every open batch now."""
        with self._lock:
            if self.forked:
                return
            for stream in self._streams.values():
                if stream.batch:
                    self._send_batch(stream)

    def _flush_loop(self) -> None:
        """Sends batches the training thread left open, and keeps acks and liveness fresh."""
        while not self._stop.wait(BATCH_SECONDS / 2):
            if self.forked:
                return
            now = time.time()
            try:
                if now >= self._next_flush:
                    self.flush_batches()
                if now >= self._next_service:
                    self.service(now)
            except Exception:  # noqa: BLE001 - a housekeeping thread must not die
                continue

    def _send_slow(self, stream: Stream, payload: bytes) -> None:
        self._check_fork()
        if stream.batch:
            self._send_batch(stream)  # keep order: what was batched goes before the spill
        if stream.spill is None:
            stream.spill = _Spill(spill_path(stream.attach.run_dir, self.pid))
        stream.spill.append(payload)

    # -- housekeeping, every SERVICE_INTERVAL ------------------------------------------
    def service(self, now: float | None = None) -> None:
        """Read acks, refill from spill files, and replace a dead daemon."""
        with self._lock:
            self._next_service = (now or time.time()) + SERVICE_INTERVAL
            self._read_acks()
            if not self._daemon.alive():
                self._respawn()
            for stream in self._streams.values():
                if stream.spill is not None and stream.spill.count:
                    self._refill(stream)

    def _read_acks(self) -> None:
        sock = self._sock
        while True:
            try:
                msg = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                ack = p.decode(msg)
            except p.DecodeError:
                continue
            if ack.kind == p.ACK:
                self._apply_ack(ack)

    def _apply_ack(self, ack: Any) -> None:
        stream = self._streams.get(ack.run_id)
        if stream is None:
            return
        if ack.uploaded >= 0 or ack.upload_note:
            stream.uploaded = max(stream.uploaded, ack.uploaded)
            stream.upload_note, stream.upload_failed = ack.upload_note, ack.upload_failed
            if ack.rejected:
                stream.rejected = [(int(seq), str(why)) for seq, why in ack.rejected]
        if ack.error is not None or ack.uploaded < 0:
            stream.daemon_error = ack.error  # a durability ack says whether the disk is fine
        if ack.seq <= stream.acked:
            return
        stream.acked = ack.seq
        q = stream.unacked
        freed = 0
        while q and q[0][0] <= ack.seq:
            freed += len(q.popleft()[1])
        self._unacked_bytes -= freed

    def _refill(self, stream: Stream) -> None:
        assert stream.spill is not None
        room = self.queue_bytes - self._unacked_bytes
        if room <= 0:
            return
        payloads = stream.spill.take(room)
        for start in range(0, len(payloads), BATCH_RECORDS):
            chunk = payloads[start : start + BATCH_RECORDS]
            blob = b"".join(chunk)
            last_seq = p.seq_of(chunk[-1])
            self._sock.send(blob, zmq.NOBLOCK)
            stream.unacked.append((last_seq, blob))
            self._unacked_bytes += len(blob)
        if stream.spill.count == 0:
            stream.spill.close(remove=True)
            stream.spill = None

    def _respawn(self) -> None:
        """The daemon died: start another, re-attach every run, resend what is unacked."""
        self._sock.close(linger=0)
        self._daemon.close()
        self._daemon = ensure_daemon(self.daemon_dir, wait_ready=False)
        self._sock = self._connect()
        for stream in self._streams.values():
            attach = stream.attach._replace(first_seq=stream.acked + 1)
            self._sock.send(p.encode(attach))
            for _seq, blob in stream.unacked:
                self._sock.send(blob)

    # -- waiting (finish, flush) -------------------------------------------------------
    def wait_durable(self, stream: Stream, seq: int, timeout: float, on_wait: Any = None) -> bool:
        """Block until the daemon acks ``seq`` (and spill is drained), or ``timeout``."""

        def verdict(_now: float) -> str | None:
            return "done" if stream.acked >= seq and stream.pending == 0 else None

        return self._wait(stream, seq, timeout, verdict, on_wait) == "done"

    def wait_uploaded(self, stream: Stream, seq: int, timeout: float, on_wait: Any) -> str:
        """Block until the server holds ``seq``: 'done', 'failed', 'unreachable' or 'timeout'.

        'unreachable' comes once the daemon has been retrying for ``UNREACHABLE_AFTER``
        seconds: the caller returns and the daemon goes on trying in the background.
        """
        retrying_since: float | None = None

        def verdict(now: float) -> str | None:
            nonlocal retrying_since
            if stream.uploaded >= seq:
                return "done"
            if stream.upload_failed:
                return "failed"
            if not stream.upload_note:
                retrying_since = None
                return None
            retrying_since = retrying_since or now
            return "unreachable" if now - retrying_since > UNREACHABLE_AFTER else None

        return self._wait(stream, seq, timeout, verdict, on_wait)

    def _wait(
        self,
        stream: Stream,
        seq: int,
        timeout: float,
        verdict: Callable[[float], str | None],
        on_wait: Any,
    ) -> str:
        """Ask the daemon to flush ``seq`` and read its acks until ``verdict`` names an
        outcome, or 'timeout'. The Flush goes again every 0.5 s: a respawned daemon never
        saw the one before."""
        flush = p.encode(p.Flush(p.FLUSH, stream.run_id, seq))
        start = last_flush = time.monotonic()
        with self._lock:
            self.flush_batches()
            self._sock.send(flush)
        while True:
            with self._lock:
                self.service()
                now = time.monotonic()
                outcome = verdict(now)
                if outcome is None and now - last_flush > 0.5:
                    self._sock.send(flush)
                    last_flush = now
            if outcome is not None:
                return outcome
            if now - start >= timeout:
                return "timeout"
            if on_wait is not None:
                on_wait(now - start, stream)
            self._sock.poll(50, zmq.POLLIN)

    # -- fork ---------------------------------------------------------------------------
    def _check_fork(self) -> None:
        if self.forked or os.getpid() != self.pid:
            raise UsageError(
                f"this process (pid {os.getpid()}) was forked from pid {self.pid}, which "
                "owns the run; a forked child cannot write to its parent's run. Log from "
                "the parent, or call trackd.init() in the child to start a run of its own"
            )

    def abandon_after_fork(self) -> None:
        """In a forked child: never use or close the parent's sockets."""
        self.forked = True
        _ABANDONED.extend([self._ctx, self._sock, self._daemon])

    def close(self) -> None:
        self._stop.set()
        if self._flusher.is_alive() and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        with self._lock:
            if self.forked:
                return
            for stream in list(self._streams.values()):
                self.close_stream(stream)
            self._sock.close(linger=1000)
            self._ctx.term()
            self._daemon.close()


def _after_fork_in_child() -> None:
    for transport in list(_TRANSPORTS):
        transport.abandon_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
