"""``Run``: one experiment, as a training script sees it.

A run owns a step counter, its config and summary, and a stream of records to the daemon.
``log()`` follows wandb's step rules:

- ``log(d)`` commits ``d`` as the row for the current step, then the step advances by one;
- ``log(d, commit=False)`` merges ``d`` into the current step's row without committing it;
- ``log(d, step=s)`` with ``s`` above the current step first commits any open row, moves to
  ``s`` and merges ``d`` into it (committed by a later, higher step, ``commit=True`` or
  ``finish()``); ``s`` below the current step drops ``d`` with one warning.
"""

from __future__ import annotations

import enum
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from . import _environment, _save
from ._config import Config
from ._names import check_run_text, check_tags
from ._side_records import SideRecords
from ._transport import Stream, Transport
from ._values import check_ints, check_key, check_log_data, log_value, summary_row
from ._wire import media
from ._wire import records as p
from ._wire.layout import spill_path
from ._wire.limits import EXIT_CODE_MAX, EXIT_CODE_MIN, INT64_MAX, MAX_RECORD_BYTES
from ._wire.settings import load
from ._wire.summary import GOALS, MetricDef, SummaryState, parse_summary_modes
from .errors import UsageError

_PLAIN = frozenset({float, int, bool})
_now = time.time


def check_exit_code(code: Any) -> int:
    """An exit code every process can store (int64), or a clear ``UsageError``."""
    if type(code) is not int or not EXIT_CODE_MIN <= code <= EXIT_CODE_MAX:
        raise UsageError(
            f"finish(): exit_code {code!r} is not an int from {EXIT_CODE_MIN} to "
            f"{EXIT_CODE_MAX}; pass the process's exit status, e.g. 0 or 1"
        )
    return code


def refused_message(run_id: str, run_dir: str, rejected: list[tuple[int, str]]) -> str:
    """What to tell the user about records the server refused (they stay in the run log)."""
    shown = "; ".join(f"seq {seq}: {why}" for seq, why in rejected[:10])
    more = f" (and {len(rejected) - 10} more)" if len(rejected) > 10 else ""
    return (
        f"finish(): the server refused {len(rejected)} record(s) of run {run_id!r} and "
        f"stored the others: {shown}{more}. The refused records stay in {run_dir}"
    )


def _check_size(payload: bytes | memoryview, what: str) -> None:
    if len(payload) > MAX_RECORD_BYTES:
        raise ValueError(
            f"{what} is {len(payload)} bytes once encoded; one record may be at most "
            f"{MAX_RECORD_BYTES} bytes: log fewer or smaller values, or save large data as a file"
        )


SYSTEM_PREFIX = "system/"  # the daemon's system metrics (see _side_records)


def _check_not_system(keys: Any) -> None:
    for key in keys:
        if key.startswith(SYSTEM_PREFIX):
            raise ValueError(
                f"log(): key {key!r} starts with {SYSTEM_PREFIX!r}, which is reserved for the "
                "system metrics trackd records itself; log it under another name, e.g. "
                f"{'sys_' + key[len(SYSTEM_PREFIX) :]!r}"
            )


class RunState(enum.Enum):
    RUNNING = "running"
    FINISHING = "finishing"
    FINISHED = "finished"


_RUNNING = RunState.RUNNING


class Summary:
    """``run.summary``: the last value of each key, unless set explicitly.

    Example::

        run.summary["best_acc"] = 0.93
        print(run.summary["loss"])
    """

    def __init__(self, run: Run) -> None:
        self._run = run

    def _dict(self) -> dict[str, Any]:
        return self._run._summary_state.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        self.update({key: None})

    def __contains__(self, key: object) -> bool:
        return key in self._dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def keys(self) -> Any:
        return self._dict().keys()

    def items(self) -> Any:
        return self._dict().items()

    def update(self, data: dict[str, Any]) -> None:
        """Set summary values explicitly; ``None`` removes an explicit value."""
        clean = {
            check_key("summary", str(k)): (None if v is None else log_value(str(k), v))
            for k, v in data.items()
        }
        for key, value in clean.items():
            if value is not None and media.is_raw(value):
                raise TypeError(
                    f"summary: value for key {key!r} is a {value[media.TYPE]} with pixels; "
                    "log images with log(), the summary keeps the last one logged"
                )
        self._run._send_summary(clean)

    def as_dict(self) -> dict[str, Any]:
        return self._dict()

    def __repr__(self) -> str:
        return f"Summary({self._dict()!r})"


class _MetaField:
    """A run attribute (``run.name``, ``run.notes`` ...) whose changes reach the run log and
    the server as a ``RunUpdate`` record."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = name

    def __get__(self, run: Run | None, owner: type) -> Any:
        return self if run is None else run._fields[self.field]

    def __set__(self, run: Run, value: Any) -> None:
        run._update_meta(self.field, value)


class Run:
    """A run. Create one with :func:`trackd.init`; log with :meth:`log`; end with :meth:`finish`.

    Example::

        with trackd.init(project="mnist", config={"lr": 1e-3}) as run:
            for step in range(100):
                run.log({"loss": 1 / (step + 1)})
    """

    def __init__(
        self,
        meta: p.RunStart,
        run_dir: str,
        transport: Transport | None,
        upload: p.UploadTarget | None = None,
        stream: Stream | None = None,
    ) -> None:
        self.id = meta.run_id
        self.writer = meta.writer  # this process's label in a shared run ("": the only writer)
        self.primary = meta.primary
        self._fields: dict[str, Any] = {
            "name": meta.name,
            "notes": meta.notes,
            "tags": tuple(meta.tags),
            "group": meta.group,
            "job_type": meta.job_type,
        }
        self.project = meta.project
        self.entity = meta.entity
        self.mode = meta.mode
        self.dir = run_dir
        self.start_time = meta.start_time
        self.config = Config()
        self.config.update(meta.config)
        self.summary = Summary(self)
        self._meta = meta
        self._upload = upload
        self._transport = transport
        self._lock = transport._lock if transport is not None else threading.RLock()
        self._stream: Stream | None = stream
        self._seq = meta.seq  # the RunStart record takes meta.seq
        self._step = meta.start_step
        self._row: dict[str, Any] | None = None
        self._state = RunState.RUNNING
        self._summary_state = SummaryState()
        self._warned_step = False
        self._encode_history = p.history_encoder()
        self._media_packer = p.keeping_packer()
        self._row_media = False  # the open row holds raw media: send it as HistoryMedia
        self._send: Any = None  # transport.send once started; bound once, it is the hot path
        # with no metric definitions, folding a row into the summary is one dict update
        self._observe: Any = self._summary_state.last.update
        self._good_keys: set[str] = set()
        self._exit_code: int | None = None
        self._on_finished: Callable[[Run], None] | None = None
        self._saves: list[_save.SaveRequest] = []
        self._finish_hooks: list[Callable[[Run], None]] = []  # e.g. watch() removes its hooks
        self._side: SideRecords | None = None  # console output, system samples, env files

    name = _MetaField()
    notes = _MetaField()
    tags = _MetaField()
    group = _MetaField()
    job_type = _MetaField()

    # -- lifecycle ----------------------------------------------------------------------
    def _start(
        self, console: bool = False, system: bool = False, git: _environment.Git | None = None
    ) -> None:
        """Attach (unless attached already), send the RunStart, and start what runs beside
        the script: console capture, system samples, the environment files (given ``git``,
        the checkout the diff is taken from)."""
        if self._transport is not None and self._stream is None:
            attach = p.Attach(
                p.ATTACH,
                self.id,
                0,
                self.dir,
                self._meta.pid,
                self._meta.seq,
                self.mode,
                self._upload,
                writer=self._meta.writer,
            )
            self._stream = self._transport.open_stream(attach)
        if self._transport is not None:
            self._send = self._transport.send
            self._emit_record(self._meta)
        self.config._set_callback(self._send_config)
        if self._stream is not None:
            self._side = SideRecords(self, console, system)
            self._stream.on_sample = self._side.on_sample
            self._stream.on_turn = self._side.on_turn
            if git is not None:
                self._side.save_environment(git)

    @property
    def step(self) -> int:
        """The step the next committed row gets."""
        return self._step

    @property
    def path(self) -> str:
        """``entity/project/run_id``, as wandb's ``run.path`` (entity ``-`` where none is known:
        an offline run before it is synced)."""
        return f"{self.entity or '-'}/{self.project}/{self.id}"

    @property
    def url(self) -> str | None:
        """The run's page in the server's web UI, or None for a run that is not uploaded
        (offline or disabled)."""
        if self._upload is None:
            return None
        return run_page_url(self._upload.base_url, self._upload.entity, self.project, self.id)

    @property
    def state(self) -> str:
        return self._state.value

    def _is_running(self) -> bool:
        return self._state is RunState.RUNNING

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _emit_record(self, record: Any) -> None:
        """Send a stored record; its ``seq`` came from :meth:`_next_seq`."""
        if self._transport is None or self._stream is None:
            return
        payload = p.encode(record)
        _check_size(payload, type(record).__name__)
        self._transport.send(self._stream, record.seq, payload, time.time())

    def _send_config(self, changed: dict[str, Any]) -> None:
        with self._lock:
            self._check_running("config.update()")
            self._emit_record(p.Config(p.CONFIG, self.id, self._next_seq(), changed))

    def _send_summary(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._check_running("summary.update")
            self._summary_state.set_explicit(data)
            self._emit_record(p.Summary(p.SUMMARY, self.id, self._next_seq(), data))

    def _update_meta(self, field: str, value: Any) -> None:
        if field == "tags":
            value = tuple(check_tags(value))
            sent: Any = list(value)
        else:
            check_run_text(**{field: value})
            sent = value
        with self._lock:
            self._check_running(f"run.{field} = ...")
            self._fields[field] = value
            self._emit_record(p.RunUpdate(p.RUN_UPDATE, self.id, self._next_seq(), {field: sent}))

    def _check_running(self, what: str) -> None:
        if self._state is not RunState.RUNNING:
            name = what or "this call"
            raise UsageError(
                f"{name}: run {self.id!r} is {self._state.value}; "
                "call trackd.init() to start a new run"
            )

    # -- logging ------------------------------------------------------------------------
    def log(
        self, data: dict[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Log a dict of metrics for the current (or the given) step.

        Example::

            run.log({"loss": 0.25, "acc": 0.91})
            run.log({"val/loss": 0.3}, step=100)
        """
        if (
            type(data) is dict
            and data.keys() <= self._good_keys
            and _PLAIN.issuperset(map(type, data.values()))
        ):
            row = data  # flat, known-good keys, plain numbers: nothing to convert
        else:
            row = check_log_data(data)
            if not self._good_keys.issuperset(row):
                _check_not_system(row.keys() - self._good_keys)
                self._good_keys.update(row)
            if media.row_has_raw(row):
                self._log_media(row, step, commit)
                return
        with self._lock:
            if self._state is not _RUNNING:
                self._check_running("log()")
            if step is None and commit is None and self._row is None:
                self._write_row(row)  # the common case
            elif step is not None:
                if self._move_to_step(step):
                    self._merge(row)
                    if commit:
                        self._commit()
            elif commit is False:
                self._merge(row)
            elif self._row is not None:
                self._merge(row)
                self._commit()
            else:
                self._write_row(row)

    def _log_media(self, row: dict[str, Any], step: int | None, commit: bool | None) -> None:
        """``log()`` of a row holding raw media: the same step rules, sent as HistoryMedia."""
        with self._lock:
            if self._state is not _RUNNING:
                self._check_running("log()")
            if step is not None and not self._move_to_step(step):
                return
            self._merge(row)
            self._row_media = True
            if commit or (step is None and commit is None):
                self._commit()

    def _move_to_step(self, step: Any) -> bool:
        if type(step) is not int:
            if isinstance(step, bool) or not hasattr(step, "__index__"):
                raise TypeError(f"log(): step is a {type(step).__name__}; pass an int")
            step = int(step)
        if not 0 <= step < INT64_MAX:
            raise ValueError(
                f"log(): step {step} is outside 0..2**63-2; steps are non-negative int64 "
                "values (the next step must fit too)"
            )
        if step < self._step:
            if not self._warned_step:
                self._warned_step = True
                warnings.warn(
                    f"log(): step {step} is lower than the current step {self._step} of run "
                    f"{self.id!r}; this data is dropped (steps must increase; this warning "
                    "is shown once per run)",
                    UserWarning,
                    stacklevel=4,
                )
            return False
        if step > self._step:
            self._commit()
            self._step = step
        return True

    def _merge(self, row: dict[str, Any]) -> None:
        check_ints(row)  # a merged row is committed later, where an error would be too late
        if self._row is None:
            self._row = dict(row)
        else:
            self._row.update(row)

    def _commit(self) -> None:
        if self._row is not None:
            row, self._row = self._row, None
            if self._row_media:
                self._row_media = False
                self._write_media_row(row)
            else:
                self._write_row(row)

    def _write_media_row(self, row: dict[str, Any]) -> None:
        seq = self._seq + 1
        now = _now()
        if self._send is not None:
            assert self._transport is not None and self._stream is not None
            packer = self._media_packer
            try:
                packer.pack((p.HISTORY_MEDIA, self.id, seq, self._step, now, row))
                with packer.getbuffer() as payload:
                    _check_size(payload, f"the row of step {self._step}")
                    self._transport.send_large(self._stream, seq, payload, now)
            finally:
                packer.reset()
        self._seq = seq
        self._observe(summary_row(row))
        self._step += 1

    def _write_row(self, row: dict[str, Any]) -> None:
        seq = self._seq + 1
        now = _now()
        if self._send is not None:
            try:
                payload = self._encode_history(self.id, seq, self._step, now, row)
            except (OverflowError, ValueError, TypeError):
                check_ints(row)
                raise
            if len(payload) > MAX_RECORD_BYTES:
                _check_size(payload, f"the row of step {self._step}")
            self._send(self._stream, seq, payload, now)
        self._seq = seq
        self._observe(row)
        self._step += 1

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        summary: str | None = None,
        goal: str | None = None,
        hidden: bool = False,
    ) -> None:
        """Say how a metric (or a glob of them, ``"val/*"``) is plotted and summarised.

        Example::

            run.define_metric("val/loss", step_metric="epoch", summary="min", goal="minimize")
        """
        if not isinstance(name, str) or not name:
            raise UsageError("define_metric(): name must be a non-empty str such as 'val/*'")
        try:
            modes = parse_summary_modes(summary)
        except ValueError as exc:
            raise UsageError(f"define_metric({name!r}): {exc}") from None
        if goal is not None and goal not in GOALS:
            raise UsageError(
                f"define_metric({name!r}): goal {goal!r} is not 'minimize' or 'maximize'"
            )
        if step_metric is not None and not isinstance(step_metric, str):
            raise UsageError(
                f"define_metric({name!r}): step_metric is a {type(step_metric).__name__}; "
                "pass the name of a logged key, e.g. step_metric='epoch'"
            )
        with self._lock:
            self._check_running("define_metric()")
            self._summary_state.define(MetricDef(name, step_metric, modes, goal))
            self._observe = self._summary_state.observe
            self._emit_record(
                p.Metric(
                    p.METRIC, self.id, self._next_seq(), name, step_metric, summary, goal, hidden
                )
            )

    # -- files --------------------------------------------------------------------------
    def save(
        self, glob_str: str | os.PathLike[str], base_path: str | None = None, policy: str = "live"
    ) -> list[str]:
        """Upload files with the run: ``"now"``, ``"end"`` (at ``finish()``) or ``"live"``
        (now, again whenever they change, and at ``finish()``); returns the names saved now.

        Example::

            run.save("checkpoints/*.pt")  # saved as "model.pt", ... (relative to the glob's folder)
            run.save("out/config.yaml", base_path=".", policy="now")  # as "out/config.yaml"
        """
        req = _save.request(glob_str, base_path, policy)
        with self._lock:
            self._check_running("save()")
            if req.policy != "end" and self._send is not None:
                names = self._send_files(req)
            else:
                names = []
            if req.policy != "now":
                self._saves.append(req)
        return names

    def _send_files(self, req: _save.SaveRequest) -> list[str]:
        names = []
        for name, path in _save.matches(req):
            self._emit_record(p.File(p.FILE, self.id, self._next_seq(), name, path, req.policy))
            names.append(name)
        return names

    # -- finishing ----------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Flush everything, wait until the daemon has it durably, and end the run.

        Calling it again does nothing. ``exit_code`` other than 0 marks the run failed.
        """
        code = self._exit_code if exit_code is None else check_exit_code(exit_code)
        if self._side is not None and self._state is RunState.RUNNING:
            self._side.close()  # outside the lock: it waits for a thread that takes it
        with self._lock:
            if self._state is not RunState.RUNNING:
                return
            self._commit()
            for req in self._saves:  # "end" files, and the final version of "live" ones
                self._send_files(req)
            state = "finished" if not code else "failed"
            self._state = RunState.FINISHING
            finish = p.Finish(p.FINISH, self.id, self._next_seq(), state, code, time.time())
            self._emit_record(finish)
        try:
            self._wait(finish.seq, quiet)
        finally:
            self._state = RunState.FINISHED
            for hook in self._finish_hooks:
                hook(self)
            if self._transport is not None and self._stream is not None:
                self._transport.close_stream(self._stream)
            if self._on_finished is not None:
                self._on_finished(self)

    def _wait(self, seq: int, quiet: bool | None) -> None:

        if self._transport is None or self._stream is None:
            return
        settings = load()
        say = not (quiet or settings.silent)
        shown = [False]

        def progress(elapsed: float, stream: Stream) -> None:
            if elapsed > 1.0 and not shown[0] and say:
                shown[0] = True
                print(
                    f"trackd: waiting for the daemon to store {stream.pending} record(s)...",
                    file=sys.stderr,
                )

        if not self._transport.wait_durable(self._stream, seq, settings.finish_timeout, progress):
            kept = self._transport.close_stream(self._stream)
            why = f" ({self._stream.daemon_error})" if self._stream.daemon_error else ""
            warnings.warn(
                f"finish(): the daemon did not confirm {kept} record(s) of run {self.id!r} "
                f"within {settings.finish_timeout:.0f} s (TRACKD_FINISH_TIMEOUT){why}; they "
                f"are kept in {spill_path(self.dir, os.getpid())}, which the daemon stores in "
                f"the run log once it can; the daemon log is in {self._transport.daemon_dir}",
                UserWarning,
                stacklevel=3,
            )
            return
        if self._stream.attach.upload is not None:
            self._wait_upload(seq, settings.finish_timeout, say)

    def _wait_upload(self, seq: int, timeout: float, say: bool) -> None:
        assert self._transport is not None and self._stream is not None
        url = self._stream.attach.upload.base_url  # type: ignore[union-attr]
        last = [0.0]

        def progress(elapsed: float, stream: Stream) -> None:
            if say and elapsed > 1.0 and elapsed - last[0] >= 1.0:
                last[0] = elapsed
                done = max(stream.uploaded, 0)
                print(
                    f"trackd: uploading run {self.id}: {done}/{seq} records on the server",
                    file=sys.stderr,
                )

        outcome = self._transport.wait_uploaded(self._stream, seq, timeout, progress)
        note = self._stream.upload_note or outcome
        if self._stream.rejected:
            warnings.warn(refused_message(self.id, self.dir, self._stream.rejected), stacklevel=4)
        if outcome == "done":
            if say:
                print(f"trackd: run {self.name} ({self.id}) is on {self.url}", file=sys.stderr)
            return
        message = (
            f"finish(): run {self.id!r}: {note}"
            if outcome == "failed"
            else f"finish(): the server at {url} has not confirmed run {self.id!r} yet ({note}); "
            "the daemon keeps uploading in the background (see `trackd status`)"
        )
        warnings.warn(message, UserWarning, stacklevel=4)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.finish(exit_code=1 if exc_type is not None else None)

    def __repr__(self) -> str:
        return (
            f"<trackd.Run {self.entity or '-'}/{self.project}/{self.id} ({self.name}) {self.state}>"
        )


def run_page_url(base_url: str, entity: str | None, project: str, run_id: str) -> str:
    """The web UI's address of a run: ``<server>/#/r/<entity>/<project>/<run id>``."""
    parts = "/".join(quote(part, safe="") for part in (entity or "-", project, run_id))
    return f"{base_url.rstrip('/')}/#/r/{parts}"
