"""Uploading run logs to the server, from disk, in a thread of the daemon.

The uploader never sees records in memory: it reads each online run's log file from the
offset the server last confirmed (``upload_state.Progress``), so a restarted daemon resumes
where the last one stopped and nothing depends on the training process being alive.

A batch is the record bytes from the log wrapped in a msgpack map, posted to
``/api/v1/ingest``; stretches of plain History records go as columnar elements (ingest
body version 2, :mod:`trackd._wire.columns`), which the server stores without a Python
object per value (a server that refuses version 2 gets version 1 bodies from then on); the server applies each seq at most once and answers with the highest
seq it holds, which becomes the new upload progress. Batches go out when ``batch_bytes`` are
waiting, when the oldest waiting record is ``batch_seconds`` old, or at once when a client
is waiting in ``finish()``.

Failures: connection errors, timeouts, 5xx, 408 and 429 are retried forever with
exponential backoff and full jitter (429 and 503 honour Retry-After); 413 halves the batch,
and a single record the server still finds too large is recorded as refused; a 422 that
names refused records (the server applied the rest, see :mod:`trackd._wire.ingest`) records
them in the run's upload progress and moves on; any other 4xx stops that run's upload and
records the server's message. ``finish()`` and ``trackd status`` show both. The data stays
on disk either way.
"""

from __future__ import annotations

import bisect
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from trackd._wire import columns, error_body, upload_state
from trackd._wire import records as p
from trackd._wire.ingest import IngestAnswer, decode_answer, encode_body
from trackd._wire.layout import RUN_LOG_NAME, stream_key
from trackd._wire.runlog import FRAME, HEADER, check_header, iter_frames, split_frames
from trackd._wire.settings import Settings
from trackd._wire.upload_state import Progress

from ._api_client import api_client
from ._media_work import MediaRetry, MediaWork, RunMedia, needs_work

log = logging.getLogger("trackd.daemon")
RETRY_BASE = 0.25
RETRY_MAX = 8.0
LOOKAHEAD_BYTES = 16 << 20  # how far past a batch media records are prepared ahead
MEDIA_BATCH_WAIT = 0.2  # seconds prepared rows may wait for the next one, to share a batch
MEDIA_BATCH_RECORDS = 16
TORN_WAIT = 0.05  # seconds before looking again at a frame that is still being written
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PartialRejection(Exception):
    """The server applied a batch but refused some of its records."""

    def __init__(self, answer: IngestAnswer) -> None:
        super().__init__(f"{len(answer.rejected)} record(s) refused")
        self.answer = answer


class FatalError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class UploadJob:
    run_id: str
    run_dir: Path
    target: p.UploadTarget
    progress: Progress
    writer: str = ""  # the writer label of a shared run's log ("" = the only writer)
    live: bool = False
    flush: bool = False
    failures: int = 0
    next_attempt: float = 0.0
    last_upload: float = 0.0
    last_heartbeat: float = 0.0
    max_records: int = 1 << 30
    note: str | None = None
    failed: bool = False
    done: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    media: RunMedia | None = None
    waiting_media: bool = False  # the next record to send is being prepared
    cut_since: float | None = None  # since when a batch waits for a row being prepared
    columnar: bool = True  # send columnar History (ingest body version 2)
    ahead: Batch | None = None  # the next batch, built while the last one was in flight

    @property
    def log_path(self) -> Path:
        return self.run_dir / RUN_LOG_NAME

    def pending_bytes(self) -> int:
        try:
            size = self.log_path.stat().st_size
        except OSError:
            return 0
        return max(0, size - max(self.progress.offset, HEADER.size))


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """What a client waiting on a run's upload is told."""

    seq: int
    note: str | None
    failed: bool
    rejected: tuple[tuple[int, str], ...] = ()


@dataclass(slots=True)
class Batch:
    payloads: list[bytes]
    end_offset: int
    last_seq: int
    columnar: bool = False  # posted with columnar elements
    start: int = 0  # the log offset it starts at
    body: bytes | None = None  # the request body, once built


class Uploader:
    """Owns the upload jobs and the thread that works on them."""

    def __init__(self, daemon_dir: Path, settings: Settings) -> None:
        self.daemon_dir = daemon_dir
        self.settings = settings
        self.jobs: dict[str, UploadJob] = {}  # by stream key: one job per (run, writer)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._clients: dict[str, httpx.Client] = {}
        self._thread = threading.Thread(target=self._loop, name="trackd-upload", daemon=True)
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="trackd-post")
        self.media = MediaWork(settings, self._wake.set)

    # -- called from the daemon's main thread ----------------------------------------
    def start(self) -> None:
        for entry in upload_state.registered(self.daemon_dir):
            self.add(entry.run_id, entry.run_dir, entry.target, live=False, writer=entry.writer)
        self._thread.start()

    def add(
        self, run_id: str, run_dir: Path, target: p.UploadTarget, live: bool, writer: str = ""
    ) -> None:
        """Upload the log in ``run_dir`` (writer ``writer``'s log of ``run_id``)."""
        key = stream_key(run_id, writer)
        with self._lock:
            job = self.jobs.get(key)
            if job is not None and job.run_dir != run_dir and not (job.done or job.failed):
                log.warning("run %s: %s still uploading; %s waits", key, job.run_dir, run_dir)
                return  # never drop an unfinished job's remaining data (sync uploads the other)
            upload_state.register(self.daemon_dir, run_id, run_dir, target, writer)
            if job is None or job.target != target or job.run_dir != run_dir:
                progress = upload_state.load_progress(run_dir)
                job = UploadJob(run_id, run_dir, target, progress, writer)
                job.headers = {"Authorization": f"Bearer {target.api_key}"}
                job.media = RunMedia(run_id, run_dir, target)
                self.jobs[key] = job
            job.live, job.failed, job.done = live, False, False
            job.note, job.failures, job.next_attempt = None, 0, 0.0
        self._wake.set()

    def set_live(self, key: str, live: bool) -> None:
        job = self.jobs.get(key)
        if job is not None:
            job.live = live
            self._wake.set()

    def notify(self, key: str) -> None:
        """New records are in the log of ``key`` (a stream key, as for every method here)."""
        if key in self.jobs:
            self._wake.set()

    def request_flush(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is not None:
            job.flush = True
            self._wake.set()

    def status(self, key: str) -> UploadStatus | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        rejected = tuple(job.progress.rejected)
        return UploadStatus(job.progress.seq, job.note, job.failed, rejected)

    def busy(self) -> bool:
        return any(not job.done and not job.failed for job in list(self.jobs.values()))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sender.shutdown(wait=True)
        for client in self._clients.values():
            client.close()
        self.media.close()

    # -- the upload thread --------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            next_due = time.monotonic() + self.settings.batch_seconds
            for job in list(self.jobs.values()):
                try:
                    due = self._work(job)
                except Exception:  # noqa: BLE001 - one run's trouble must not stop the rest
                    log.exception("run %s: upload step failed", job.run_id)
                    due = time.monotonic() + 1.0
                next_due = min(next_due, due)
            self._wake.wait(max(0.0, next_due - time.monotonic()))

    def _work(self, job: UploadJob) -> float:
        """Do what is due for ``job``; return when it next needs attention."""
        now = time.monotonic()
        if job.done or job.failed:
            return now + 3600
        if now < job.next_attempt:
            return job.next_attempt
        pending = job.pending_bytes()
        wait_until = job.last_upload + self.settings.batch_seconds
        if pending and (job.flush or pending >= self.settings.batch_bytes or now >= wait_until):
            if self._upload_some(job):
                if job.waiting_media:  # a finished preparation wakes the loop, too
                    return time.monotonic() + MEDIA_BATCH_WAIT / 4
                more = job.pending_bytes() and not job.note
                return time.monotonic() if more else job.next_attempt
            if job.live:
                return now + TORN_WAIT  # a frame is being written; look again soon, never spin
            # no writer will complete what follows the last whole frame (a crash tore it)
            log.warning("run %s: %d byte(s) of torn tail not uploaded", job.run_id, pending)
            pending = 0
        if pending:
            return wait_until
        if job.live:
            if job.progress.seq == 0:
                return now + self.settings.heartbeat_interval  # the server has no run yet
            assert job.media is not None
            return min(self._heartbeat_if_due(job, now), self.media.poll_live(job.media, now))
        self._finish(job)
        return now + 3600

    def _upload_some(self, job: UploadJob) -> bool:
        """Post the next batch; False if the log holds no whole frame past the progress."""
        try:
            batch = self._read_batch(job)
        except MediaRetry as exc:
            self._retry_later(job, str(exc), None)
            return True
        if batch is None:
            return job.waiting_media
        try:
            durable = self._post_batch(job, batch)
        except RetryableError as exc:
            self._retry_later(job, str(exc), exc.retry_after)
            return True
        except PartialRejection as exc:
            durable = exc.answer.durable_seq
            for rejection in exc.answer.rejected:
                self._note_rejected(job, rejection.seq, rejection.reason)
        except FatalError as exc:
            if batch.columnar and exc.status in (400, 415, 422):  # an older server?
                log.warning("run %s: columnar batch refused (%s); sending records", job.run_id, exc)
                job.columnar = False
                return True
            if exc.status == 413 and len(batch.payloads) > 1:
                job.max_records = max(1, len(batch.payloads) // 2)
                return True
            if exc.status != 413:
                self._fail(job, str(exc))
                return True
            durable = batch.last_seq  # one record the server will never take: move past it
            self._note_rejected(job, batch.last_seq, f"the server refused it as too large: {exc}")
        job.failures, job.note = 0, None
        job.last_upload = job.last_heartbeat = time.monotonic()
        if durable >= batch.last_seq:
            job.progress.offset, job.progress.seq = batch.end_offset, durable
            upload_state.save_progress(job.run_dir, job.progress)
            assert job.media is not None
            self.media.sent(job.media, durable)
        job.flush = job.flush and job.pending_bytes() > 0  # a waiting finish() gets it all now
        return True

    def _read_batch(self, job: UploadJob) -> Batch | None:
        start = max(job.progress.offset, HEADER.size)
        ahead, job.ahead = job.ahead, None
        if ahead is not None and ahead.start == start and len(ahead.payloads) <= job.max_records:
            if job.columnar or not ahead.columnar:
                job.waiting_media, job.cut_since = False, None
                return ahead
        with open(job.log_path, "rb") as f:
            check_header(f.read(HEADER.size), str(job.log_path))
            f.seek(start)
            data = f.read(self.settings.batch_bytes + (1 << 16))
            if len(data) >= FRAME.size:
                need = FRAME.unpack_from(data)[0] + FRAME.size
                if need > len(data):  # one frame bigger than a batch: read all of it
                    f.seek(start)
                    data = f.read(need)
            frames, ends = split_frames(data)
            if len(data) < LOOKAHEAD_BYTES and _holds_media(frames):
                f.seek(start)  # media rows shrink to file references: take many at once
                frames, ends = split_frames(f.read(LOOKAHEAD_BYTES))
        job.waiting_media = False
        if not _holds_media(frames):  # plain records: cut the batch without a loop over them
            cut = bisect.bisect_left(ends, self.settings.batch_bytes) + 1  # the one crossing it
            count = min(cut, job.max_records, len(frames))
            payloads, end = frames[:count], ends[count - 1] if count else 0
        else:
            payloads, end = self._media_batch(job, start, frames, ends)
        if not payloads or (job.waiting_media and self._gather_more(job, len(payloads))):
            return None
        job.cut_since = None
        last_seq = p.seq_of(payloads[-1])
        return Batch(payloads, start + end, last_seq, start=start)

    def _read_ahead(self, job: UploadJob, after: Batch) -> None:
        """Build the batch after ``after`` while ``after`` is in flight (the server and this
        thread then work at the same time): only a full batch of records needing no media
        work, or any batch while a client waits in ``finish()``. Used only if ``after`` is
        confirmed and nothing changed (:meth:`_read_batch` checks its offset)."""
        try:
            with open(job.log_path, "rb") as f:
                f.seek(after.end_offset)
                data = f.read(self.settings.batch_bytes + (1 << 16))
            frames, ends = split_frames(data)
            if not frames or _holds_media(frames):
                return
            cut = bisect.bisect_left(ends, self.settings.batch_bytes) + 1
            if cut > len(frames) and not job.flush:
                return  # not a full batch yet: it will wait for more records anyway
            count = min(cut, job.max_records, len(frames))
            payloads = frames[:count]
            ahead = Batch(payloads, after.end_offset + ends[count - 1], p.seq_of(payloads[-1]))
            ahead.start = after.end_offset
            ahead.body = self._body(job, ahead)
            job.ahead = ahead
        except Exception:  # noqa: BLE001 - reading ahead is only an optimisation
            log.debug("run %s: no read-ahead", job.run_id, exc_info=True)

    def _media_batch(
        self, job: UploadJob, start: int, frames: list[bytes], ends: list[int]
    ) -> tuple[list[bytes], int]:
        """The records of a batch holding media rows, up to the first row not prepared yet,
        and the end offset (relative to ``start``) of the last one taken."""
        payloads: list[bytes] = []
        end = sent = 0
        for payload, frame_end in zip(frames, ends, strict=True):
            if needs_work(payload):
                try:
                    payload = self._prepared(job, payload)
                except MediaRetry:
                    if payloads:
                        break  # send what comes before it; the next read retries it
                    raise
                if job.waiting_media:
                    self._prepare_ahead(job, start + frame_end)
                    break
            payloads.append(payload)
            end, sent = frame_end, sent + len(payload)
            if sent >= self.settings.batch_bytes or len(payloads) >= job.max_records:
                break
        return payloads, end

    def _gather_more(self, job: UploadJob, ready: int) -> bool:
        """Whether to wait for more prepared rows before sending ``ready`` records cut short
        by one in preparation: a batch per row would make each image a round trip."""
        assert job.media is not None
        now = time.monotonic()
        if job.cut_since is None:
            job.cut_since = now
        return ready < MEDIA_BATCH_RECORDS and now - job.cut_since < MEDIA_BATCH_WAIT

    def _prepared(self, job: UploadJob, payload: bytes) -> bytes:
        """The record to send for a HistoryMedia or File record; sets ``job.waiting_media``
        (and returns ``payload``) while it is being prepared."""
        assert job.media is not None
        seq = p.seq_of(payload)
        prepared = self.media.ready(job.media, seq, payload)
        if prepared is None:
            job.waiting_media = True
            return payload
        if prepared.problem is not None:
            self._note_rejected(job, seq, prepared.problem)
        return prepared.payload

    def _prepare_ahead(self, job: UploadJob, offset: int) -> None:
        """Start preparing the media records after the one waited for (at most
        ``LOOKAHEAD_BYTES`` further in the log), so the workers run in parallel."""
        assert job.media is not None
        if not self.media.has_room(job.media):
            return
        with open(job.log_path, "rb") as f:
            f.seek(offset)
            data = f.read(LOOKAHEAD_BYTES)
        for payload, _end in iter_frames(data, 0):
            if needs_work(payload):
                try:
                    self.media.ready(job.media, p.seq_of(payload), payload)
                except MediaRetry:
                    return
                if not self.media.has_room(job.media):
                    return

    def _client(self, base_url: str) -> httpx.Client:
        client = self._clients.get(base_url)
        if client is None:
            client = api_client(base_url, self.settings)
            self._clients[base_url] = client
        return client

    def _body(self, job: UploadJob, batch: Batch) -> bytes:
        """The request body of ``batch``: version 2 when it holds columnar History."""
        target = job.target
        elements = columns.build(batch.payloads) if job.columnar else batch.payloads
        batch.columnar = len(elements) != len(batch.payloads)  # an element takes >= 8 records
        version = 2 if batch.columnar else 1
        return encode_body(target.entity, target.project, job.run_id, elements, version, job.writer)

    def _post_batch(self, job: UploadJob, batch: Batch) -> int:
        """Post ``batch`` from the sender thread, reading the next one ahead meanwhile."""
        body = batch.body if batch.body is not None else self._body(job, batch)
        headers = dict(job.headers, **{"Content-Type": "application/msgpack"})
        sent = self._sender.submit(self._request, job, "/ingest", content=body, headers=headers)
        self._read_ahead(job, batch)
        answer = sent.result()
        return int(answer["durable_seq"])  # type: ignore[call-overload]

    def _request(self, job: UploadJob, path: str, **kwargs: object) -> dict[str, object]:
        try:
            response = self._client(job.target.base_url).post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise RetryableError(f"server unreachable ({type(exc).__name__}: {exc})") from exc
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableError(f"server answered {response.status_code}", _retry_after(response))
        if response.status_code == 422:
            answer = decode_answer(_json_or_none(response))
            if answer is not None and answer.rejected:
                raise PartialRejection(answer)
        if response.status_code >= 400:
            raise FatalError(_server_message(response), response.status_code)
        try:
            return response.json()  # type: ignore[no-any-return]
        except ValueError as exc:
            raise RetryableError(f"unreadable answer from the server: {exc}") from exc

    def _heartbeat_if_due(self, job: UploadJob, now: float) -> float:
        due = job.last_heartbeat + self.settings.heartbeat_interval
        if now < due:
            return due
        body = {"entity": job.target.entity, "project": job.target.project, "run_id": job.run_id}
        if job.writer:  # a shared run's writer: the server watches each one's heartbeats
            body["writer"] = job.writer
        try:
            self._request(job, "/heartbeat", json=body, headers=job.headers)
            job.last_heartbeat = now
        except RetryableError as exc:
            self._retry_later(job, str(exc), exc.retry_after)
        except FatalError as exc:
            log.warning("run %s: heartbeat refused: %s", job.run_id, exc)
            job.last_heartbeat = now
        return now + self.settings.heartbeat_interval

    def _retry_later(self, job: UploadJob, why: str, retry_after: float | None) -> None:
        job.failures += 1
        delay = min(RETRY_MAX, RETRY_BASE * 2 ** (job.failures - 1))
        delay = random.uniform(delay / 2, delay)  # jitter: many daemons must not sync up
        if retry_after is not None:
            delay = max(delay, retry_after)
        job.next_attempt = time.monotonic() + delay
        job.note = f"retrying in {delay:.1f} s: {why}"
        log.info("run %s: upload %s (attempt %d)", job.run_id, job.note, job.failures)

    def _note_rejected(self, job: UploadJob, seq: int, reason: str) -> None:
        job.progress.add_rejected(seq, reason)
        log.warning("run %s: the server refused record seq %d: %s", job.run_id, seq, reason)

    def _fail(self, job: UploadJob, message: str) -> None:
        job.failed = True
        job.note = f"upload failed: {message}"
        job.progress.error = message
        upload_state.save_progress(job.run_dir, job.progress)
        log.error("run %s: %s", job.run_id, job.note)

    def _finish(self, job: UploadJob) -> None:
        job.done = True
        upload_state.unregister(self.daemon_dir, stream_key(job.run_id, job.writer))
        log.info("run %s: upload complete at seq %d", job.run_id, job.progress.seq)


def _holds_media(payloads: list[bytes]) -> bool:
    return any(map(needs_work, payloads))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(float(value), 300.0)
    except ValueError:
        return None


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _server_message(response: httpx.Response) -> str:
    message = error_body.error_message(_json_or_none(response))
    if message is None:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    return f"{message} (HTTP {response.status_code})"
