"""Getting records from the training process to the daemon without ever waiting.

Two threads, two locks. The training thread's ``send()`` only appends: an encoded record
goes into the run's open batch (a list, under the queue lock ``_lock``, which ``Run`` shares
so one acquire serves a ``log()``); a batch of ``BATCH_RECORDS`` records becomes one blob on
the run's ``ready`` queue. Past ``queue_bytes`` of records not yet acked, records are
appended to a spill file in the run directory instead (an append, never a wait).

Everything else happens on the transport's own I/O thread, which alone touches the ZeroMQ
socket and the daemon: it sends ready blobs and batches older than ``BATCH_SECONDS``
(``NOBLOCK``, a DEALER socket whose C++ I/O thread writes to the daemon's ipc socket), reads
acks, refills from spill files, answers the daemon's Nacks, and replaces a dead daemon
(spawning one may take seconds; only this thread waits for it). Blobs stay on the run's
``unacked`` queue until the daemon acks them as durable, so a daemon crash loses nothing:
the new daemon gets an Attach and every unacked blob again, and drops the seqs it has.

``init()`` attaches with a handshake (:meth:`Transport.open_stream`): the daemon answers
with the run log's last durable seq and the directory it writes, or refuses because another
live process writes that run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import zmq

from ._buffers import BufferPool
from ._spawn import DaemonHandle, ensure_daemon
from ._spill import Spill
from ._wire import records as p
from ._wire.layout import endpoint, spill_path
from .errors import CommError, UsageError

SERVICE_INTERVAL = 0.2
BATCH_RECORDS = 64
BATCH_SECONDS = 0.01
UNREACHABLE_AFTER = 5.0
ATTACH_TIMEOUT = 5.0  # how long init() waits for the daemon's answer to its Attach
REATTACH_AFTER = 2.0  # resend an unanswered Attach after this many seconds
SPAWN_BACKOFF_MAX = 5.0
log = logging.getLogger("trackd")
_ABANDONED: list[Any] = []  # zmq objects inherited over fork(); never touched, never freed
_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()
Blob = bytes | memoryview  # records in memory: bytes, or a view of a pooled buffer


class Stream:
    """One run's records on their way to the daemon.

    ``batch``, ``ready``, ``spill`` and the byte count are the training thread's, under the
    queue lock; ``unacked`` and the attach state belong to the I/O thread."""

    __slots__ = (
        "attach",
        "run_id",
        "unacked",
        "ready",
        "acked",
        "spill",
        "batch",
        "batch_seq",
        "batch_since",
        "uploaded",
        "upload_note",
        "upload_failed",
        "answer",
        "answered",
        "attach_sent",
        "flush_seq",
        "flush_sent",
        "resend",
        "rejected",
        "daemon_error",
        "on_turn",
        "on_sample",
    )

    def __init__(self, attach: p.Attach) -> None:
        self.attach = attach
        self.run_id = attach.run_id
        self.unacked: deque[tuple[int, Blob]] = deque()  # (last seq, blob) sent, not acked
        self.ready: deque[tuple[int, Blob]] = deque()  # (last seq, blob) not sent yet
        self.batch: list[bytes] = []  # records not in a blob yet
        self.batch_seq = 0  # seq of the batch's last record
        self.batch_since = 0.0
        self.acked = attach.first_seq - 1
        self.spill: Spill | None = None
        self.uploaded = -1  # the server's durable seq, as the daemon last reported it
        self.upload_note: str | None = None
        self.upload_failed = False
        self.answer: p.Attached | None = None
        self.answered = threading.Event()
        self.attach_sent: float | None = None  # None: an Attach is due
        self.flush_seq = 0  # a finish() waits for this seq: ask the daemon to flush it
        self.flush_sent = 0.0
        self.resend = False
        self.rejected: list[tuple[int, str]] = []  # records the server refused: (seq, why)
        self.daemon_error: str | None = None  # why the daemon cannot store records now
        # the run's work on the I/O thread: console lines each turn, system samples
        self.on_turn: Callable[[float], None] | None = None
        self.on_sample: Callable[[p.Sample], None] | None = None

    @property
    def pending(self) -> int:
        spilled = self.spill.count if self.spill else 0
        return len(self.unacked) + len(self.ready) + len(self.batch) + spilled


class Transport:
    """This process's connection to the daemon, shared by all its runs."""

    def __init__(self, daemon_dir: Path, queue_bytes: int) -> None:
        self.daemon_dir = daemon_dir
        self.queue_bytes = queue_bytes
        self.pid = os.getpid()
        self.forked = False
        self._lock = threading.RLock()  # the queue lock: held only for list operations
        self._progress = threading.Condition(threading.Lock())  # acks arrived
        self._streams: dict[str, Stream] = {}
        self._queued_bytes = 0
        self._next_check = 0.0
        self._next_spawn = 0.0
        self._spawn_failures = 0
        self.daemon_error: str | None = None
        self._ctx = zmq.Context(io_threads=1)
        self._daemon: DaemonHandle | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._outbox: deque[bytes] = deque()  # control messages from user threads
        self.pool = BufferPool(limit=queue_bytes)  # memory for large records, reused
        try:
            self._set_daemon(ensure_daemon(daemon_dir))
        except (CommError, OSError) as exc:
            self._spawn_failed(exc)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher = threading.Thread(target=self._io_loop, name="trackd-io", daemon=True)
        self._flusher.start()
        _TRANSPORTS.add(self)

    # -- streams (called from user threads) ---------------------------------------------
    def open_stream(self, attach: p.Attach, timeout: float = ATTACH_TIMEOUT) -> Stream:
        """Attach a run and wait (bounded) for the daemon's answer, in ``stream.answer``.

        Raises :class:`UsageError` if the daemon says another live process writes the run;
        with no answer in ``timeout`` it warns and goes on (records wait in memory)."""
        self._check_fork()
        attach = attach._replace(handshake=True, host=HOST)
        stream = Stream(attach)
        with self._lock:
            self._streams[attach.run_id] = stream
        self._wake.set()
        deadline = time.monotonic() + timeout
        while not stream.answered.wait(0.05) and time.monotonic() < deadline:
            if self._daemon is None and self.daemon_error:
                break  # no daemon can be started now: say so at once, keep trying behind
        if stream.answer is not None and not stream.answer.accepted:
            with self._lock:
                self._streams.pop(attach.run_id, None)
            answer = stream.answer
            raise UsageError(
                f"init(): run {attach.run_id!r} is being written by another live process "
                f"(pid {answer.holder_pid} on host {answer.holder_host!r}); one process "
                "writes a run at a time: finish that process first, or use another run id"
            )
        if stream.answer is None:
            why = self.daemon_error or f"no answer within {timeout:.0f} s"
            warnings.warn(
                f"init(): the trackd daemon in {self.daemon_dir} has not accepted run "
                f"{attach.run_id!r} ({why}); logging goes on, records wait in memory (then "
                "in the run's spill file) and are sent once a daemon runs",
                UserWarning,
                stacklevel=5,
            )
        return stream

    def open_sync(self, run_id: str, run_dir: str, upload: p.UploadTarget) -> Stream:
        """Ask the daemon to upload an existing run log; progress arrives as acks."""
        self._check_fork()
        attach = p.Attach(p.ATTACH, run_id, 0, run_dir, self.pid, 1, "sync", upload)
        stream = Stream(attach)
        stream.answered.set()  # a Sync has no handshake
        with self._lock:
            self._streams[run_id] = stream
        self._send_now(p.encode(p.Sync(p.SYNC, run_id, 0, run_dir, upload)))
        return stream

    def has_streams(self) -> bool:
        return bool(self._streams)

    def close_stream(self, stream: Stream) -> int:
        """Stop sending a run's records. Records the daemon has not acked are kept in the
        run's spill file (the daemon recovers them); returns how many were kept."""
        with self._lock:
            self._streams.pop(stream.run_id, None)
            leftover = [payload for _seq, blob in stream.unacked for payload in _split(blob)]
            leftover += [payload for _seq, blob in stream.ready for payload in _split(blob)]
            leftover += stream.batch
            leftover = [x for x in leftover if p.seq_of(x) > stream.acked]
            self._queued_bytes -= sum(len(blob) for _seq, blob in stream.unacked)
            self._queued_bytes -= sum(len(blob) for _seq, blob in stream.ready)
            self._queued_bytes -= sum(len(payload) for payload in stream.batch)
            stream.unacked.clear()
            stream.ready.clear()
            stream.batch.clear()
            try:
                return self._keep(stream, leftover)
            except OSError as exc:  # the run directory is gone or its disk refuses
                log.warning(
                    "trackd: run %s: %d record(s) not confirmed by the daemon could not be "
                    "kept in %s: %s",
                    stream.run_id,
                    len(leftover),
                    spill_path(stream.attach.run_dir, self.pid),
                    exc,
                )
                stream.spill = None
                return 0

    def _keep(self, stream: Stream, leftover: list[Blob]) -> int:
        """Put ``leftover`` in front of the stream's spill file and close it; how many
        records it holds."""
        if leftover and stream.spill is None:
            stream.spill = self._new_spill(stream)
        if stream.spill is None:
            return 0
        if leftover:
            stream.spill.rewrite(leftover)
        kept = stream.spill.count
        stream.spill.close(remove=kept == 0)
        stream.spill = None
        return kept

    def _new_spill(self, stream: Stream) -> Spill:
        return Spill(spill_path(stream.attach.run_dir, self.pid), release=self.pool.give)

    # -- the hot path (training thread) -------------------------------------------------
    def send(self, stream: Stream, seq: int, payload: bytes, now: float) -> None:
        """Hand one encoded record to the daemon: an append in memory, never a wait."""
        if stream.spill is None and self._queued_bytes < self.queue_bytes and not self.forked:
            batch = stream.batch
            batch.append(payload)
            stream.batch_seq = seq
            self._queued_bytes += len(payload)
            if len(batch) >= BATCH_RECORDS:
                stream.ready.append((seq, b"".join(batch)))
                batch.clear()
            elif len(batch) == 1:
                stream.batch_since = now
        else:
            self._send_slow(stream, payload)

    def send_large(self, stream: Stream, seq: int, data: memoryview, now: float) -> None:
        """Like :meth:`send`, for a large record (a row of images) in a buffer the caller
        reuses: copied once, into pooled memory (:mod:`._buffers`), and sent as a blob of its
        own, never joined into a batch; past the queue limit it goes on the spill file's
        in-memory tail, which the I/O thread writes."""
        blob = self.pool.copy(data)
        if stream.spill is None and self._queued_bytes < self.queue_bytes and not self.forked:
            if stream.batch:  # keep order: what was batched goes first
                stream.ready.append((stream.batch_seq, b"".join(stream.batch)))
                stream.batch.clear()
            stream.ready.append((seq, blob))
            self._queued_bytes += len(blob)
        else:
            self._send_slow(stream, blob, later=True)
            self._wake.set()  # the I/O thread writes the spill file's tail

    def _send_slow(self, stream: Stream, payload: Blob, later: bool = False) -> None:
        self._check_fork()
        with self._lock:
            if stream.batch:  # keep order: what was batched goes before the spill
                stream.ready.append((stream.batch_seq, b"".join(stream.batch)))
                stream.batch.clear()
            if stream.spill is None:
                stream.spill = self._new_spill(stream)
            stream.spill.append(payload, later)

    def flush_batches(self) -> None:
        """Send every open batch soon (the I/O thread does it at once)."""
        self._wake.set()

    # -- the I/O thread -----------------------------------------------------------------
    def _io_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(BATCH_SECONDS / 2)
            self._wake.clear()
            if self.forked:
                return
            try:
                self._io_turn(time.monotonic())
            except Exception:  # noqa: BLE001 - this thread must not die; it tries again
                log.debug("trackd: I/O turn failed", exc_info=True)

    def _io_turn(self, now: float) -> None:
        if now >= self._next_check:
            self._next_check = now + SERVICE_INTERVAL
            if self._daemon is None or not self._daemon.alive():
                self._reconnect(now)
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            spill = stream.spill
            if spill is not None and spill.tail:
                spill.write_tail()  # large records the training thread left to this thread
        if self._sock is None:
            return
        self._read_acks()
        with self._lock:
            streams = list(self._streams.values())
            outbox = list(self._outbox)
            self._outbox.clear()
        for blob in outbox:
            self._send_blob(blob)
        for stream in streams:
            self._serve(stream, now)
        self.pool.trim(now)

    def _serve(self, stream: Stream, now: float) -> None:
        """Attach if due, resend, send what is ready, refill from the spill, ask to flush."""
        send = self._send_blob
        if stream.on_turn is not None:
            stream.on_turn(now)  # may add records (console output) to the stream
        refused = stream.answer is not None and not stream.answer.accepted
        writes = stream.attach.mode != "sync"  # a sync only uploads: it never attaches
        if writes and (
            stream.attach_sent is None
            or (
                (refused or not stream.answered.is_set())
                and now - stream.attach_sent > REATTACH_AFTER
            )
        ):
            send(p.encode(stream.attach._replace(first_seq=stream.acked + 1)))
            stream.attach_sent = now
            stream.resend = True
        if refused:
            return  # refused: keep everything until an Attach is accepted
        if stream.resend:
            stream.resend = False
            for _seq, blob in stream.unacked:
                send(blob)
        for item in self._take_ready(stream):
            send(item[1])
            stream.unacked.append(item)
        if stream.spill is not None and stream.spill.count and not stream.ready:
            self._refill(stream)
        if stream.flush_seq and now - stream.flush_sent > 0.5:  # a new daemon needs it too
            send(p.encode(p.Flush(p.FLUSH, stream.run_id, stream.flush_seq)))
            stream.flush_sent = now

    def _take_ready(self, stream: Stream) -> list[tuple[int, Blob]]:
        with self._lock:
            old = time.time() - stream.batch_since >= BATCH_SECONDS  # send() gets wall time
            if stream.batch and (stream.flush_seq or old):
                stream.ready.append((stream.batch_seq, b"".join(stream.batch)))
                stream.batch.clear()
            items = list(stream.ready)
            stream.ready.clear()
            return items

    def _send_blob(self, blob: Blob) -> None:
        assert self._sock is not None
        try:
            self._sock.send(blob, zmq.NOBLOCK)
        except zmq.ZMQError:
            self._next_check = 0.0  # look at the daemon on the next turn; unacked is resent

    def _send_now(self, blob: bytes) -> None:
        """A control message from a user thread: handed to the I/O thread's socket."""
        with self._lock:
            self._outbox.append(blob)
        self._wake.set()

    def _refill(self, stream: Stream) -> None:
        spill = stream.spill
        assert spill is not None
        room = self.queue_bytes - self._queued_bytes
        if room <= 0:
            return
        payloads, nbytes = spill.read(room)  # disk I/O outside the queue lock
        for start in range(0, len(payloads), BATCH_RECORDS):
            chunk = payloads[start : start + BATCH_RECORDS]
            blob = b"".join(chunk)
            self._send_blob(blob)
            stream.unacked.append((p.seq_of(chunk[-1]), blob))
        with self._lock:
            self._queued_bytes += sum(len(x) for x in payloads)
            current = stream.spill
            if current is not spill:
                return  # close_stream() took the spill file meanwhile
            current.consume(len(payloads), nbytes)
            if current.count == 0:
                current.close(remove=True)
                stream.spill = None

    def _read_acks(self) -> None:
        sock = self._sock
        assert sock is not None
        got = False
        while True:
            try:
                msg = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                record = p.decode(msg)
            except p.DecodeError:
                continue
            got = True
            self._on_message(record)
        if got:
            with self._progress:
                self._progress.notify_all()

    def _on_message(self, record: p.Record) -> None:
        stream = self._streams.get(record.run_id)
        if stream is None:
            return
        if isinstance(record, p.Ack):
            self._apply_ack(stream, record)
        elif isinstance(record, p.Attached):
            stream.answer = record
            stream.answered.set()
        elif isinstance(record, p.Sample):
            if stream.on_sample is not None:
                stream.on_sample(record)
        elif isinstance(record, p.Nack) and stream.answered.is_set():
            log.info("trackd: daemon lost run %s (%s); attaching again", stream.run_id, record)
            stream.attach_sent = None  # attach again, then resend every unacked blob
            stream.answered.clear()

    def _apply_ack(self, stream: Stream, ack: p.Ack) -> None:
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
        give = self.pool.give
        # under the queue lock: close_stream() reads unacked under it, and a pooled buffer
        # given back is released, so it must not be popped while close_stream() splits it
        with self._lock:
            while q and q[0][0] <= ack.seq:
                blob = q.popleft()[1]
                self._queued_bytes -= len(blob)
                give(blob)  # a pooled buffer is reused by the next large record

    def _reconnect(self, now: float) -> None:
        """No daemon (or it died): start one, attach every run again, resend what is
        unacked. Spawning waits for the new daemon, on this thread only."""
        if now < self._next_spawn:
            return
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._daemon is not None:
            self._daemon.close()
            self._daemon = None
        try:
            handle = ensure_daemon(self.daemon_dir, wait=False)
        except (CommError, OSError) as exc:
            self._spawn_failed(exc)
            return
        if handle is None:
            return  # another process is starting one; look again next turn
        self._set_daemon(handle)
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.attach_sent = None

    def _set_daemon(self, handle: DaemonHandle | None) -> None:
        if handle is None:
            return
        self._daemon = handle
        self._spawn_failures, self._next_spawn, self.daemon_error = 0, 0.0, None
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, 0)  # our own byte bound applies, see module doc
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.connect(endpoint(self.daemon_dir))
        self._sock = sock

    def _spawn_failed(self, exc: Exception) -> None:
        self._spawn_failures += 1
        delay = min(SPAWN_BACKOFF_MAX, 0.2 * 2**self._spawn_failures)
        self._next_spawn = time.monotonic() + delay
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.daemon_error is None:
            log.warning("trackd: no daemon (%s); trying again in the background", first_line)
        self.daemon_error = first_line

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
        """Have the I/O thread send everything and ask the daemon to flush ``seq`` (again
        every 0.5 s: a respawned daemon never saw the one before); wait until ``verdict``
        names an outcome, or 'timeout'."""
        start = time.monotonic()
        stream.flush_seq, stream.flush_sent = seq, 0.0
        self._wake.set()
        while True:
            now = time.monotonic()
            outcome = verdict(now)
            if outcome is not None:
                return outcome
            if now - start >= timeout:
                return "timeout"
            if on_wait is not None:
                on_wait(now - start, stream)
            with self._progress:
                self._progress.wait(0.05)

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
        self._wake.set()
        if self._flusher.is_alive() and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        if self.forked:
            return
        for stream in list(self._streams.values()):
            self.close_stream(stream)
        if self._flusher.is_alive():
            _ABANDONED.extend([self._ctx, self._sock, self._daemon])
            return  # still busy (starting a daemon): leave its socket alone
        try:
            if self._sock is not None:
                self._sock.close(linger=1000)
            self._ctx.term()
        except zmq.ZMQError:
            pass
        if self._daemon is not None:
            self._daemon.close()


HOST = os.uname().nodename


def _split(blob: Blob) -> list[Blob]:
    """The records of a batch blob (msgpack arrays back to back), each as its own bytes."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(blob) + 1)
    unpacker.feed(blob)
    out = []
    start = 0
    for _fields in unpacker:
        end = unpacker.tell()
        out.append(blob[start:end])
        start = end
    return out


def _before_fork() -> None:
    for transport in list(_TRANSPORTS):
        transport._lock.acquire()  # no fork while another thread holds the queue lock


def _after_fork_in_parent() -> None:
    for transport in list(_TRANSPORTS):
        transport._lock.release()


def _after_fork_in_child() -> None:
    for transport in list(_TRANSPORTS):
        transport.abandon_after_fork()
        transport._lock.release()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
