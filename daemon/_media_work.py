"""Preparing media rows and saved files for upload, in worker threads the uploader owns.

The uploader thread reads records from the run log; a ``HistoryMedia`` row or a ``File``
record cannot be sent as it is. :meth:`MediaWork.ready` hands it to a small thread pool
(PNG encoding and hashing release the GIL) and answers ``None`` until it is prepared, so
the uploader cuts the batch before it and goes on with other runs; a finished preparation
wakes the uploader. Preparing a record means: write its files (see :mod:`._media`), upload
each one the server does not hold yet (``HEAD``, then a streamed ``PUT``; blobs the server
has are remembered per run), and encode the record to send: a ``History`` row with file
references and the same seq, or the ``File`` record with ``sha256`` and ``size``.

Live files: once the server has a ``File`` record of policy ``live``, the file is watched
(every :data:`LIVE_POLL` seconds, while the run is live); a new mtime or size uploads the new
version and points the name at it (``PUT .../saved-files/<name>``, idempotent). A ``File``
record waits while such a re-upload is in flight, so a later record always lands last.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from trackd._wire import records as p
from trackd._wire.settings import Settings

from ._api_client import api_client
from ._media import MediaError, convert_row, snapshot_file

log = logging.getLogger("trackd.daemon")
LIVE_POLL = 2.0  # seconds between looks at a live file
MAX_IN_FLIGHT = 16  # records of one run being prepared at once: other runs get workers too
WORKERS = 4  # encoding holds a core; uploads mostly wait on the network
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_KINDS = frozenset({p.HISTORY_MEDIA, p.FILE})


class MediaRetry(Exception):
    """Preparing failed for a reason that time fixes (the server is down, say)."""


def needs_work(payload: bytes) -> bool:
    """Whether an encoded stored record is a HistoryMedia or File record (its kind is the
    second byte: a fixarray header, then a positive fixint)."""
    return len(payload) > 1 and payload[1] in _KINDS


@dataclass(slots=True)
class LiveFile:
    name: str
    path: Path
    stat: tuple[int, int]  # (mtime_ns, size) of the version the server has


@dataclass(slots=True)
class Prepared:
    """What to send for a record; ``problem``: it could not be prepared and goes as it is
    (the server refuses it), with this reason noted for the user."""

    payload: bytes
    problem: str | None = None
    live: LiveFile | None = None


@dataclass(slots=True)
class RunMedia:
    """One uploading run's media state (kept by its upload job)."""

    run_id: str
    run_dir: Path
    target: p.UploadTarget
    futures: dict[int, Future[Prepared]] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)  # blobs the server holds for this run
    live: dict[str, LiveFile] = field(default_factory=dict)
    waiting_live: dict[int, LiveFile] = field(default_factory=dict)  # by File record seq
    poll: Future[None] | None = None
    next_poll: float = 0.0
    entity: str | None = None
    uploading: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


WORKER_NICE = 10  # PNG encoding yields the CPU to training processes on a busy machine


def _yield_cpu() -> None:
    """Lower this worker thread's CPU priority (Linux: a thread has its own nice value), so
    encoding a burst of images never takes cores a training process wants; on a machine
    with idle cores it changes nothing."""
    try:
        me = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + WORKER_NICE)
        )
    except (AttributeError, OSError):  # no per-thread priority here: run as is
        pass


class MediaWork:
    """The worker pool and the blob uploads of every run (see the module docstring)."""

    def __init__(
        self, settings: Settings, wake: Callable[[], None], workers: int = WORKERS
    ) -> None:
        self.settings = settings
        self._wake = wake
        self._pool = ThreadPoolExecutor(
            workers, thread_name_prefix="trackd-media", initializer=_yield_cpu
        )
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()

    # -- called from the uploader thread -----------------------------------------------
    def ready(self, state: RunMedia, seq: int, payload: bytes) -> Prepared | None:
        """The prepared record, or ``None`` while it is in work (it is started here);
        :class:`MediaRetry` if its preparation failed for a reason worth retrying."""
        future = state.futures.get(seq)
        if future is None:
            polling = state.poll is not None and not state.poll.done()
            if not self.has_room(state) or (polling and payload[1] == p.FILE):
                return None
            future = self._pool.submit(self._prepare, state, payload)
            future.add_done_callback(lambda _f: self._wake())
            state.futures[seq] = future
        if not future.done():
            return None
        try:
            return future.result()
        except MediaRetry:
            del state.futures[seq]  # started again on the next attempt
            raise
        except Exception as exc:  # a bug or an OS error: log it, and retry like the rest
            del state.futures[seq]
            log.exception("run %s: preparing record seq %d failed", state.run_id, seq)
            raise MediaRetry(f"preparing record seq {seq} failed: {exc!r}") from exc

    def has_room(self, state: RunMedia) -> bool:
        """Whether another record of this run may start being prepared now."""
        return sum(not f.done() for f in state.futures.values()) < MAX_IN_FLIGHT

    def sent(self, state: RunMedia, durable_seq: int) -> None:
        """The server holds every record up to ``durable_seq``: forget their preparations;
        live files whose File record it now holds are watched from here on."""
        for seq in [s for s in state.futures if s <= durable_seq]:
            prepared = state.futures.pop(seq)
            if prepared.done() and prepared.exception() is None and prepared.result().live:
                live = prepared.result().live
                assert live is not None
                state.live[live.name] = live

    def poll_live(self, state: RunMedia, now: float) -> float:
        """Re-upload changed live files when due; returns when to look next."""
        if not state.live:
            return now + 3600
        if now < state.next_poll or (state.poll is not None and not state.poll.done()):
            return max(state.next_poll, now + 0.1)
        state.next_poll = now + LIVE_POLL
        state.poll = self._pool.submit(self._poll, state)
        return state.next_poll

    # -- in the worker threads -------------------------------------------------------
    def _prepare(self, state: RunMedia, payload: bytes) -> Prepared:
        record = p.decode(payload)
        if isinstance(record, p.File):
            return self._prepare_file(state, record, payload)
        assert isinstance(record, p.HistoryMedia)
        try:
            converted = convert_row(record.data, state.run_dir)
        except MediaError as exc:
            log.error("run %s: row seq %d not prepared: %s", state.run_id, record.seq, exc)
            return Prepared(payload, f"the daemon could not store its media: {exc}")
        for sha256, path in converted.files.items():
            self._ensure_blob(state, sha256, path)
        row = p.History(
            p.HISTORY, record.run_id, record.seq, record.step, record.time, converted.data
        )
        return Prepared(p.encode(row))

    def _prepare_file(self, state: RunMedia, record: p.File, payload: bytes) -> Prepared:
        path = Path(record.path)
        try:
            info = path.stat()
            sha256, size, copy = snapshot_file(path, state.run_dir)
        except OSError as exc:
            why = f"saved file {record.name!r} cannot be read from {path}: {exc.strerror or exc}"
            log.error("run %s: %s", state.run_id, why)
            return Prepared(payload, why)
        try:
            self._ensure_blob(state, sha256, copy)
        finally:
            copy.unlink(missing_ok=True)  # the original stays where the user keeps it
        live = None
        if record.policy == "live":
            live = LiveFile(record.name, path, (info.st_mtime_ns, info.st_size))
        return Prepared(p.encode(record._replace(sha256=sha256, size=size)), None, live)

    def _poll(self, state: RunMedia) -> None:
        for live in list(state.live.values()):
            try:
                info = live.path.stat()
                if (info.st_mtime_ns, info.st_size) == live.stat:
                    continue
                sha256, size, copy = snapshot_file(live.path, state.run_dir)
            except OSError as exc:
                log.warning("run %s: live file %s: %s", state.run_id, live.path, exc)
                continue
            try:
                self._ensure_blob(state, sha256, copy)
                name = quote(live.name)
                self._call(
                    state, "PUT", f"/saved-files/{name}", json={"sha256": sha256, "size": size}
                )
                live.stat = (info.st_mtime_ns, info.st_size)
                log.info(
                    "run %s: live file %s uploaded again (%d bytes)", state.run_id, live.name, size
                )
            except MediaRetry as exc:
                log.info("run %s: live file %s: %s; retrying", state.run_id, live.name, exc)
            finally:
                copy.unlink(missing_ok=True)

    # -- HTTP ------------------------------------------------------------------------
    def _client(self, base_url: str) -> httpx.Client:
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                client = api_client(base_url, self.settings)
                self._clients[base_url] = client
            return client

    def _run_path(self, state: RunMedia) -> str:
        if state.entity is None:
            state.entity = state.target.entity or str(
                self._call(state, "GET", None)["default_entity"]
            )
        parts = (state.entity, state.target.project, state.run_id)
        return "/runs/" + "/".join(quote(part, safe="") for part in parts)

    def _call(self, state: RunMedia, method: str, path: str | None, **kwargs: Any) -> Any:
        """``method`` on the run's ``path`` (``None``: ``/viewer``); the answer's JSON, or
        ``None`` for a 404 to a HEAD; :class:`MediaRetry` or :class:`MediaError`."""
        url = "/viewer" if path is None else self._run_path(state) + path
        headers = {"Authorization": f"Bearer {state.target.api_key}", **kwargs.pop("headers", {})}
        try:
            response = self._client(state.target.base_url).request(
                method, url, headers=headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise MediaRetry(f"server unreachable ({type(exc).__name__}: {exc})") from exc
        if response.status_code in _RETRYABLE:
            raise MediaRetry(f"server answered {response.status_code} to {method} {url}")
        if method == "HEAD":
            return response.status_code == 200
        if response.status_code >= 400:
            raise MediaRetry(
                f"server refused {method} {url}: {response.status_code} {response.text[:300]}"
            )
        return response.json()

    def _ensure_blob(self, state: RunMedia, sha256: str, path: Path) -> None:
        """Upload ``path`` as blob ``sha256`` of the run unless the server holds it (one
        worker at a time per blob: another one logging the same image waits for it)."""
        while True:
            with state.lock:
                if sha256 in state.known:
                    return
                other = state.uploading.get(sha256)
                if other is None:
                    mine = state.uploading[sha256] = threading.Event()
                    break
            other.wait()  # then look again: it may have failed
        try:
            self._upload_blob(state, sha256, path)
        finally:
            with state.lock:
                del state.uploading[sha256]
            mine.set()

    def _upload_blob(self, state: RunMedia, sha256: str, path: Path) -> None:
        if self._call(state, "HEAD", f"/blobs/{sha256}"):
            state.known.add(sha256)
            return
        headers = {"Content-Type": "application/octet-stream"}
        self._call(state, "PUT", f"/blobs/{sha256}", content=_read_chunks(path), headers=headers)
        state.known.add(sha256)
        log.info("run %s: uploaded blob %s (%s)", state.run_id, sha256, path.name)


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk
