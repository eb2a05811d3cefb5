"""The daemon process: receive records, make them durable, ack them, watch the clients.

Lifecycle: :meth:`Daemon.start` takes the per-user lock and binds the socket,
:meth:`Daemon.loop` runs until asked to stop or idle, :meth:`Daemon.shutdown` makes
everything durable and lets go. Signal handlers only set a flag: the first SIGTERM (or
SIGINT) drains and flushes, a second one exits at once.

Each loop turn: wait for messages (at most until the next group fsync or liveness check),
drain what arrived, fsync the logs that changed when the group interval is up (or a client
asked for a flush) and ack them, then look after clients that died.
"""

from __future__ import annotations

import argparse
import enum
import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq
from trackd._wire import records as p
from trackd._wire.layout import (
    DAEMON_LOG_NAME,
    LOCK_NAME,
    PID_NAME,
    RUN_LOG_NAME,
    SOCKET_NAME,
    prepare_daemon_dir,
    stream_key,
)
from trackd._wire.settings import Settings, load

from ._run_slot import CRASH_GRACE, RunSlot, recover_spills, writer_of
from ._sampler import Sampler, Target
from ._uploader import Uploader, UploadStatus

log = logging.getLogger("trackd.daemon")
DRAIN_MAX = 20000  # messages per turn, so fsync and acks are never starved
SYNC_BYTES = 4 << 20
DISK_RETRY = 1.0  # seconds between tries to write a run log the disk refused


class DaemonState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"


class Daemon:
    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.settings = settings
        self.state = DaemonState.STARTING
        self.runs: dict[str, RunSlot] = {}  # by stream key: one slot per (run, writer)
        self._routes: dict[tuple[bytes, str], str] = {}  # (client, run id) -> stream key
        self.stop_requests = 0
        self.bad_records = 0
        self._ctx = zmq.Context(io_threads=1)
        self._sock: zmq.Socket[bytes] | None = None
        self._lock_fd: int | None = None
        self._next_sync = 0.0
        self._next_liveness = 0.0
        self._idle_since = time.monotonic()
        self.uploader = Uploader(path, settings)
        self._waiters: dict[str, tuple[bytes, str]] = {}  # key -> (client, run id) waiting
        self._nacked: set[str] = set()  # runs told to re-attach, in the message being handled
        self._reported: dict[str, UploadStatus] = {}
        interval = settings.system_interval
        self.sampler = Sampler(interval) if interval > 0 else None  # one for all runs

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> bool:
        """Take the lock and bind; False if another daemon already serves this directory."""
        prepare_daemon_dir(self.path)
        if not self._take_lock():
            log.info("another daemon holds %s; exiting", self.path / LOCK_NAME)
            return False
        sock_path = self.path / SOCKET_NAME
        sock_path.unlink(missing_ok=True)
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.RCVHWM, 100_000)
        self._sock.setsockopt(zmq.SNDHWM, 0)
        self._sock.setsockopt(zmq.LINGER, 0)
        old_umask = os.umask(0o077)
        try:
            self._sock.bind(f"ipc://{sock_path}")
        finally:
            os.umask(old_umask)
        tmp = self.path / f"{PID_NAME}.tmp"
        tmp.write_text(str(os.getpid()))
        tmp.replace(self.path / PID_NAME)
        self.uploader.start()
        if self.sampler is not None:
            self.sampler.start()
        self.state = DaemonState.RUNNING
        log.info("daemon %d serving %s", os.getpid(), sock_path)
        return True

    def _take_lock(self) -> bool:
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + 2.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one daemon per directory
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what clients ask about
                self._lock_fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)  # a client may hold it for an instant to probe liveness

    def request_stop(self, *_args: Any) -> None:
        self.stop_requests += 1
        if self.stop_requests > 1:
            log.warning("second stop request: exiting at once")
            os._exit(1)

    def loop(self) -> None:
        assert self._sock is not None
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self.stop_requests:
            now = time.monotonic()
            wait = max(0.0, min(self._next_sync, self._next_liveness) - now)
            if poller.poll(int(wait * 1000) + 1):
                self._drain()
            now = time.monotonic()
            self._sync(now, force=False)
            self._report_uploads()
            if self.sampler is not None:
                self._pass_samples(self.sampler)
            if now >= self._next_liveness:
                self._next_liveness = now + self.settings.liveness_interval
                self._check_clients(now)
                if self._idle_for(now) > self.settings.idle_timeout and not poller.poll(0):
                    log.info("idle for %.0f s with no runs; exiting", self._idle_for(now))
                    break

    def shutdown(self) -> None:
        self.state = DaemonState.DRAINING
        if self._sock is not None:
            self._drain()
        for slot in self.runs.values():
            try:
                slot.writer.close()
            except OSError as exc:
                log.error("run %s: not all records are durable at exit: %s", slot.run_id, exc)
            self._ack(slot)
        self.runs.clear()
        self.uploader.stop()
        if self.sampler is not None:
            self.sampler.stop()
        pid_file = self.path / PID_NAME
        try:
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass
        if self._sock is not None:
            self._sock.close(linger=0)
        self._ctx.term()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self.state = DaemonState.STOPPED
        log.info("daemon %d stopped", os.getpid())

    # -- receiving ----------------------------------------------------------------------
    def _drain(self) -> None:
        sock = self._sock
        assert sock is not None
        for _ in range(DRAIN_MAX):
            try:
                identity, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue  # a message with an unexpected number of parts
            self._idle_since = time.monotonic()  # a client is talking to us: not idle
            try:
                self._handle(identity, payload)
            except Exception:  # a bad record must never kill the daemon
                self.bad_records += 1
                log.exception("dropped a message that could not be handled")

    def _handle(self, identity: bytes, blob: bytes) -> None:
        """One message: one record, or a batch of msgpack records back to back."""
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(blob) + 1)
        unpacker.feed(blob)
        start = 0
        self._nacked.clear()
        for fields in unpacker:
            end = unpacker.tell()
            self._handle_one(identity, fields, blob[start:end])
            start = end

    def _handle_one(self, identity: bytes, fields: Any, payload: bytes) -> None:
        if p.is_stored(fields):
            slot = self.runs.get(self._routes.get((identity, fields[1]), fields[1]))
            if slot is None or slot.identity != identity:
                self._nack(identity, fields[1], slot)
                return
            slot.accept(fields[2], fields[0], payload)
            if slot.writer.buffered_bytes > SYNC_BYTES and slot.disk_error is None:
                try:
                    slot.writer.write()
                except OSError as exc:
                    self._disk_trouble(slot, exc)
            return
        self._handle_control(identity, p.from_fields(fields))

    def _handle_control(self, identity: bytes, record: p.Record) -> None:
        if record.kind == p.ATTACH:
            self._attach(identity, record)  # type: ignore[arg-type]
        elif record.kind == p.FLUSH:
            key = self._routes.get((identity, record.run_id), record.run_id)
            slot = self.runs.get(key)
            if slot is not None:
                slot.identity = identity
                slot.flush_requested = True
                self._next_sync = 0.0
            self._wait_upload(identity, record.run_id, key)
        elif isinstance(record, p.Sync):
            run_dir = Path(record.run_dir)
            label = writer_of(run_dir)  # a shared run's writer: its log says which
            key = stream_key(record.run_id, label)
            if key not in self.runs:
                recover_spills(record.run_id, run_dir)
            target = p.UploadTarget(*record.upload)
            # a run a client still writes stays live: its upload must not end at today's tail
            slot = self.runs.get(key)
            live = slot is not None and not slot.finished
            self.uploader.add(record.run_id, run_dir, target, live=live, writer=label)
            self._routes[(identity, record.run_id)] = key  # its Flushes ask about this log
            self._wait_upload(identity, record.run_id, key)
        else:
            self.bad_records += 1
            log.warning("dropped a record of kind %s that failed its checks", record.kind)

    def _attach(self, identity: bytes, attach: p.Attach) -> None:
        """A client writes a run: one live process per (run, writer label); an earlier
        attempt's log on this machine (a slot, or an upload job) is continued, never forked."""
        key = stream_key(attach.run_id, attach.writer)
        slot = self.runs.get(key)
        if slot is not None and slot.held_by_other(attach):
            log.warning(
                "run %s: refused pid %d on %s; pid %d on %s writes it",
                key,
                attach.pid,
                attach.host or "?",
                slot.pid,
                slot.host or "?",
            )
            if attach.handshake:
                refusal = p.Attached(
                    p.ATTACHED, attach.run_id, 0, False, 0, "", slot.pid, slot.host
                )
                self._send(identity, refusal)
            return
        if slot is None:
            run_dir = self._earlier_attempt(key) or Path(attach.run_dir)
            slot = self.runs[key] = RunSlot(attach, identity, run_dir)
            log.info("run %s attached by pid %d (%s)", key, attach.pid, slot.run_dir)
        else:
            slot.reattach(attach, identity)
            log.info("run %s re-attached by pid %d", key, attach.pid)
        self._routes[(identity, attach.run_id)] = key
        if attach.upload:
            target = p.UploadTarget(*attach.upload)
            self.uploader.add(attach.run_id, slot.run_dir, target, live=True, writer=attach.writer)
        if attach.handshake:
            self._durable(slot)  # the client may read the log to continue it
            answer = p.Attached(
                p.ATTACHED, slot.run_id, 0, True, slot.writer.last_seq, str(slot.run_dir)
            )
            self._send(identity, answer)
        self._ack(slot)

    def _earlier_attempt(self, key: str) -> Path | None:
        """The run directory of an attempt of a run's writer (its stream ``key``) this
        daemon uploads (or uploaded): a resumed run continues that log, so its unuploaded
        tail and the new records are one log with one seq order and one upload."""
        job = self.uploader.jobs.get(key)
        if job is not None and (job.run_dir / RUN_LOG_NAME).exists():
            return job.run_dir
        return None

    def _nack(self, identity: bytes, run_id: str, slot: RunSlot | None) -> None:
        """Records from a client this daemon has no writer for: it attaches again."""
        if run_id in self._nacked:
            return
        self._nacked.add(run_id)
        self.bad_records += 1
        why = "no writer for this run" if slot is None else "another process writes this run"
        log.warning("run %r: records not stored (%s); told the client", run_id, why)
        self._send(identity, p.Nack(p.NACK, run_id, 0, why))

    def _send(self, identity: bytes, record: p.Record) -> None:
        assert self._sock is not None
        try:
            self._sock.send_multipart([identity, p.encode(record)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the client went away; it attaches again if it comes back

    # -- upload progress, told to the clients waiting in finish() or sync ---------------
    def _wait_upload(self, identity: bytes, run_id: str, key: str) -> None:
        if self.uploader.status(key) is not None:
            self._waiters[key] = (identity, run_id)
            self._reported.pop(key, None)
            self.uploader.request_flush(key)

    def _report_uploads(self) -> None:
        assert self._sock is not None
        for key, (identity, run_id) in list(self._waiters.items()):
            status = self.uploader.status(key)
            if status is None or status == self._reported.get(key):
                continue
            self._reported[key] = status
            rejected = [list(pair) for pair in status.rejected]
            ack = p.Ack(p.ACK, run_id, 0, None, status.seq, status.note, status.failed, rejected)
            try:
                self._sock.send_multipart([identity, p.encode(ack)], zmq.NOBLOCK)
            except zmq.ZMQError:
                self._waiters.pop(key, None)

    # -- system metrics -----------------------------------------------------------------
    def _pass_samples(self, sampler: Sampler) -> None:
        """Tell the sampler which training processes to measure; send each run's client
        the samples taken (it stores them in its own run log)."""
        sampler.watch(
            {
                key: Target(slot.pid, str(slot.run_dir), slot.run_id, slot.label)
                for key, slot in self.runs.items()
                if not slot.finished and not slot.crash_marked
            }
        )
        for key, when, data in sampler.take():
            slot = self.runs.get(key)
            if slot is not None and not slot.finished:
                self._send(slot.identity, p.Sample(p.SAMPLE, slot.run_id, 0, when, data))

    # -- durability ---------------------------------------------------------------------
    def _sync(self, now: float, force: bool) -> None:
        if not force and now < self._next_sync:
            return
        self._next_sync = now + self.settings.fsync_interval
        done = []
        for slot in self.runs.values():
            if slot.writer.dirty or slot.flush_requested:
                slot.flush_requested = False
                if self._durable(slot):
                    self._ack(slot)
                    self.uploader.notify(slot.key)
            if slot.finished and not slot.writer.dirty:
                done.append(slot)
        for slot in done:
            self._close(slot, "finished")

    def _durable(self, slot: RunSlot) -> bool:
        """fsync the slot's log; on a disk error, keep going and tell its client why."""
        try:
            slot.writer.sync()
        except OSError as exc:
            self._disk_trouble(slot, exc)
            return False
        if slot.disk_error is not None:
            log.warning("run %s: the run log is writable again", slot.run_id)
            slot.disk_error = None
        return True

    def _disk_trouble(self, slot: RunSlot, exc: OSError) -> None:
        error = f"cannot write the run log {slot.writer.path}: {exc.strerror or exc}"
        if error != slot.disk_error:
            log.error("run %s: %s; nothing new is acked, retrying", slot.run_id, error)
            slot.disk_error = error
            self._ack(slot)
        self._next_sync = time.monotonic() + max(self.settings.fsync_interval, DISK_RETRY)

    def _ack(self, slot: RunSlot) -> None:
        assert self._sock is not None
        ack = p.encode(p.Ack(p.ACK, slot.run_id, slot.writer.synced_seq, slot.disk_error))
        try:
            self._sock.send_multipart([slot.identity, ack], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the client went away; it re-attaches if it comes back

    def _close(self, slot: RunSlot, why: str) -> None:
        try:
            slot.writer.close()
        except OSError as exc:  # everything was durable already; only the last fsync failed
            log.warning("run %s: closing the run log: %s", slot.run_id, exc)
        self.runs.pop(slot.key, None)
        self.uploader.set_live(slot.key, False)
        log.info("run %s closed (%s) at seq %d", slot.key, why, slot.writer.synced_seq)

    # -- clients ------------------------------------------------------------------------
    def _check_clients(self, now: float) -> None:
        # a route lives as long as its run's slot or its waiting finish(): a client's Flush
        # after its slot closed must still find its own writer's upload, never another's
        live = self.runs.keys() | self._waiters.keys()
        for route in [r for r, key in self._routes.items() if key not in live]:
            del self._routes[route]
        for slot in list(self.runs.values()):
            if slot.finished or slot.client_alive():
                slot.dead_since = None
                continue
            if slot.dead_since is None:
                slot.dead_since = now  # drain a little longer: its last records may be in flight
                continue
            if now - slot.dead_since >= CRASH_GRACE:
                self._crashed(slot)

    def _crashed(self, slot: RunSlot) -> None:
        """The slot's client died: take what it left, mark the run crashed, close it once
        that is durable (a full disk retries on the next check)."""
        if not slot.crash_marked:
            self._drain()
            recovered = slot.recover_spill()
            slot.mark_crashed()
            log.warning(
                "run %s: client pid %d died; %d spilled record(s) recovered, marked crashed",
                slot.run_id,
                slot.pid,
                recovered,
            )
        if self._durable(slot):
            self._close(slot, "crashed")

    def _idle_for(self, now: float) -> float:
        if self.runs or self.uploader.busy():
            self._idle_since = now
        return now - self._idle_since


def _setup_logging(path: Path) -> None:
    handler = logging.FileHandler(path / DAEMON_LOG_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    root = logging.getLogger("trackd")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trackd.daemon")
    parser.add_argument("--dir", required=True, help="the per-user daemon directory")
    args = parser.parse_args(argv)
    path = Path(args.dir)
    prepare_daemon_dir(path)
    _setup_logging(path)
    daemon = Daemon(path, load())
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if not daemon.start():
        return 0
    try:
        daemon.loop()
    finally:
        daemon.shutdown()
    sys.stdout.flush()
    return 0
