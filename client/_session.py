"""This process's session: ``trackd.init()`` starts the current run, the module-level
``log``/``define_metric``/``finish`` follow it, and exit hooks finish it."""

from __future__ import annotations

import atexit
import datetime
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import _environment
from ._config import DEFAULTS_FILE, config_source_to_dict, load_config_file
from ._names import (
    check_names,
    check_run_id,
    check_run_text,
    check_tags,
    check_writer,
    new_run_id,
    new_run_name,
)
from ._online import check_resume, start_online
from ._reader import read_run
from ._run import Run
from ._transport import Stream, Transport
from ._values import plain
from ._wire import records as p
from ._wire.layout import RUN_LOG_NAME, is_run_dir_of, run_dir_name, stream_key
from ._wire.limits import EXIT_CODE_MAX, EXIT_CODE_MIN
from ._wire.settings import Settings, load
from .cli.credentials import ServerTarget, resolve
from .errors import ConfigError, UsageError

MODES = ("online", "offline", "disabled")
_lock = threading.RLock()
_transport: Transport | None = None
_current: Run | None = None
_hooks_installed = False
_said_offline = False


def current_run() -> Run | None:
    return _current


def _get_transport(settings: Settings) -> Transport:
    global _transport
    if _transport is not None and _transport.daemon_dir != settings.daemon_path:
        if not _transport.has_streams():
            _transport.close()
            _transport = None
    if _transport is None or _transport.forked or _transport.pid != os.getpid():
        _transport = Transport(settings.daemon_path, settings.queue_bytes)
    return _transport


def init(
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    config: Any = None,
    resume: bool | str | None = None,
    id: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    notes: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    writer: str | None = None,
    primary: bool | None = None,
) -> Run:
    """Start a run and make it the current one (``trackd.run``, ``trackd.log`` ...).

    ``writer="rank-3"`` makes this process one writer of a shared run ``id`` that several
    processes (on one or many machines) write at once, each with its own label: it joins
    the run whether or not it exists yet. A labelled writer is a secondary one unless
    ``primary=True``; the run ends (finished, failed, crashed) with its primary writer.

    Example::

        run = trackd.init(project="mnist", config={"lr": 1e-3, "epochs": 5})
        trackd.log({"loss": 0.5})
        trackd.finish()
    """
    settings = load(mode=mode, project=project, entity=entity, run_id=id)
    if settings.mode not in MODES:
        raise UsageError(f"init(): mode {settings.mode!r} is not one of {', '.join(MODES)}")
    check_run_text(name=name, group=group, job_type=job_type, notes=notes)
    check_names(project=settings.project, entity=settings.entity)
    tags = check_tags(tags)
    label, is_primary = check_writer(writer, primary)
    if label and not settings.run_id:
        raise UsageError(
            f"init(): writer={label!r} joins a shared run, which needs its id: pass the same "
            "id=... in every process that writes it (or use trackd.init_distributed)"
        )
    with _lock:
        _finish_previous()
        who = _Writer(label, is_primary)
        run = _new_run(settings, name, config, resume, group, job_type, tags, notes, dir, who)
        _make_current(run)
        _install_hooks()
    return run


def _finish_previous() -> None:
    if _current is not None and _current._state.value == "running" and _owns(_current):
        _current.finish()


def _owns(run: Run) -> bool:
    t = run._transport
    return t is None or (not t.forked and t.pid == os.getpid())


def _target(settings: Settings) -> tuple[str, ServerTarget]:
    """The mode this run really gets, and the server (if any) it uploads to."""
    global _said_offline
    target = resolve(settings)
    if settings.mode == "online" and not target.base_url:
        if not _said_offline and not settings.silent:
            _said_offline = True
            print(
                "trackd: no server configured (trackd login); this run is stored offline "
                "and can be uploaded later with `trackd sync`",
                file=sys.stderr,
            )
        return "offline", target
    return settings.mode, target


@dataclass(frozen=True, slots=True)
class _Writer:
    """This process's place in its run: ``label`` ``""`` is a run's only writer."""

    label: str = ""
    primary: bool = True


def _new_run(
    settings: Settings,
    name: str | None,
    config: Any,
    resume: bool | str | None,
    group: str | None,
    job_type: str | None,
    tags: Any,
    notes: str | None,
    root: Any,
    who: _Writer = _Writer(),
) -> Run:
    run_id = check_run_id(settings.run_id or new_run_id())
    mode, target = _target(settings)
    project = target.project or "uncategorized"
    root_dir = Path(root or settings.dir).expanduser().resolve()
    if who.label:
        resume = "allow"  # a writer joins its shared run, and continues its own log
    start = _start_point(settings, mode, target, project, run_id, resume, root_dir, who.label)
    transport = None if mode == "disabled" else _get_transport(settings)
    stream = None
    if transport is not None:
        stream, start = _attach(transport, run_id, mode, resume, start, who.label)
    upload = start.upload
    environment, git = _environment.collect() if mode != "disabled" else ({}, None)
    meta = p.RunStart(
        kind=p.RUN_START,
        run_id=run_id,
        seq=start.seq,
        entity=upload.entity if upload else target.entity,
        project=upload.project if upload else project,
        name=name or new_run_name(),
        group=group,
        job_type=job_type,
        tags=list(tags or ()),
        notes=notes,
        config=_plain_config({**start.config, **_initial_config(config)}),
        start_time=time.time(),
        host=socket.gethostname(),
        pid=os.getpid(),
        program=_program(),
        git_commit=git.commit if git is not None else None,
        mode=mode,
        resumed=start.resumed,
        start_step=start.step,
        writer=who.label,
        primary=who.primary,
        environment=environment or None,
    )
    run = Run(meta, str(start.run_dir), transport, upload, stream)
    run._on_finished = _forget
    files = git if settings.environment_files else None
    run._start(settings.console, settings.system_interval > 0, files)
    if not settings.silent and mode != "disabled":
        where = f"{upload.base_url} ({upload.entity}/{upload.project})" if upload else start.run_dir
        print(f"trackd: run {meta.name} ({run_id}) logging to {where}", file=sys.stderr)
        if run.url:
            print(f"trackd: view the run at {run.url}", file=sys.stderr)
    return run


@dataclass(frozen=True, slots=True)
class _StartPoint:
    """Where a run's records begin: fresh (seq 1, step 0) or after a resumed run's last."""

    run_dir: Path
    seq: int = 1
    step: int = 0
    resumed: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    upload: p.UploadTarget | None = None


def _start_point(
    settings: Settings,
    mode: str,
    target: ServerTarget,
    project: str,
    run_id: str,
    resume: bool | str | None,
    root_dir: Path,
    writer: str = "",
) -> _StartPoint:
    if mode == "disabled":
        return _StartPoint(root_dir / f"disabled-run-{run_id}")  # never created
    if mode == "online":
        timeout = settings.http_timeout
        online = start_online(target, project, run_id, resume, timeout, writer)
        return _StartPoint(
            _make_run_dir(root_dir, run_id, mode, writer),
            online.start_seq,
            online.start_step,
            online.resumed,
            online.config,
            online.upload,
        )
    if mode == "offline":
        previous = _find_local_run(root_dir, run_id, writer)
        if check_resume(resume, run_id, previous is not None, where=f"in {root_dir}"):
            assert previous is not None
            data = read_run(previous, history=False)
            return _StartPoint(previous, data.last_seq + 1, data.last_step + 1, True, data.config)
    return _StartPoint(_make_run_dir(root_dir, run_id, mode, writer))


def _attach(
    transport: Transport,
    run_id: str,
    mode: str,
    resume: bool | str | None,
    start: _StartPoint,
    writer: str = "",
) -> tuple[Stream, _StartPoint]:
    """Attach the run to the daemon (a handshake; refused while another live process writes
    it) and continue the run log the daemon holds, which may be longer than ``start``
    knew (an earlier attempt on this machine whose tail is not on the server yet, or a
    writer that finished since ``start`` was read)."""
    attach = p.Attach(
        p.ATTACH, run_id, 0, str(start.run_dir), os.getpid(), start.seq, mode, start.upload
    )._replace(writer=writer)
    stream = transport.open_stream(attach)
    answer = stream.answer
    if answer is None or not answer.accepted:
        return stream, start  # no answer in time: go on with what we know
    run_dir = Path(answer.run_dir) if answer.run_dir else start.run_dir
    if answer.last_seq < start.seq and run_dir == start.run_dir:
        return stream, start
    try:
        check_resume(resume, run_id, True, where=f"in {run_dir}")
    except UsageError:
        transport.close_stream(stream)
        raise
    if run_dir != start.run_dir:
        _remove_if_empty(start.run_dir)
    data = read_run(run_dir)
    seq = max(start.seq, answer.last_seq + 1)
    stream.attach = stream.attach._replace(run_dir=str(run_dir), first_seq=seq)
    continued = replace(
        start,
        run_dir=run_dir,
        seq=seq,
        step=max(start.step, data.last_step + 1),
        resumed=True,
        config={**data.config, **start.config},
    )
    return stream, continued


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _find_local_run(root: Path, run_id: str, writer: str = "") -> Path | None:
    if not root.is_dir():
        return None
    for path in sorted(root.glob(f"*run-*-{stream_key(run_id, writer)}")):
        if is_run_dir_of(path.name, run_id, writer) and (path / RUN_LOG_NAME).exists():
            return path
    return None


def _make_run_dir(root: Path, run_id: str, mode: str, writer: str = "") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    prefix = "offline-run" if mode == "offline" else "run"
    run_dir = root / run_dir_name(prefix, stamp, run_id, writer)
    root.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(mode=0o700, exist_ok=True)  # its log holds what the user logged: theirs alone
    return run_dir


def _initial_config(config: Any) -> dict[str, Any]:
    """``config-defaults.yaml`` beside the script, then what ``init`` was given."""
    merged: dict[str, Any] = {}
    script = sys.argv[0] if sys.argv and sys.argv[0] else ""
    defaults = Path(script).resolve().parent / DEFAULTS_FILE if script else Path(DEFAULTS_FILE)
    if defaults.is_file():
        merged.update(load_config_file(str(defaults)))
    merged.update(config_source_to_dict(config))
    return merged


def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    try:
        return plain(config, "init(): config")  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _program() -> str | None:
    return os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None


def _forget(run: Run) -> None:
    """A finished run stops being the current one (``trackd.run is None`` again)."""
    with _lock:
        if _current is run:
            _make_current(None)


def _make_current(run: Run | None) -> None:
    global _current
    _current = run
    module = sys.modules["trackd"]
    module.run = run  # type: ignore[attr-defined]
    module.config = run.config if run is not None else None  # type: ignore[attr-defined]
    module.summary = run.summary if run is not None else None  # type: ignore[attr-defined]


# -- module-level functions -------------------------------------------------------------
def _require_run(what: str) -> Run:
    run = _current
    if run is None:
        raise UsageError(f"trackd.{what}() was called before trackd.init(); call init() first")
    return run


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """Log to the current run; see :meth:`Run.log`."""
    run = _current
    if run is None:
        _require_run("log")
    run.log(data, step, commit)  # type: ignore[union-attr]


def define_metric(
    name: str,
    step_metric: str | None = None,
    summary: str | None = None,
    goal: str | None = None,
    hidden: bool = False,
) -> None:
    """Define a metric of the current run; see :meth:`Run.define_metric`."""
    _require_run("define_metric").define_metric(name, step_metric, summary, goal, hidden)


def save(glob_str: Any, base_path: str | None = None, policy: str = "live") -> list[str]:
    """Save files with the current run; see :meth:`Run.save`."""
    return _require_run("save").save(glob_str, base_path, policy)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the current run (if any); see :meth:`Run.finish`."""
    run = _current
    if run is not None:
        run.finish(exit_code, quiet)


def teardown() -> None:
    """Finish the current run and drop this process's connection to the daemon."""
    global _transport
    with _lock:
        run = _current
        if run is not None and _owns(run):
            run.finish()
        _make_current(None)
        if _transport is not None and not _transport.forked:
            _transport.close()
        _transport = None


# -- process exit ------------------------------------------------------------------------
def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous = sys.excepthook

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        run = _current
        if run is not None and _owns(run) and not issubclass(exc_type, KeyboardInterrupt):
            run._exit_code = 1
        elif run is not None and _owns(run):
            run._exit_code = 255
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    sys.exit = _exit_hook(sys.exit)


def _exit_hook(original: Any) -> Any:
    """``sys.exit(code)`` records ``code`` on the current run before exiting, so a script
    that ends with ``sys.exit(3)`` finishes its run as failed with exit code 3. (A bare
    ``raise SystemExit(3)`` never passes through here and reads as a clean exit.)"""

    def exit(code: Any = None) -> None:  # noqa: A001 - it stands in for sys.exit
        run = _current
        if run is not None and _owns(run):
            run._exit_code = _exit_status(code)
        original(code)

    return exit


def _exit_status(code: Any) -> int:
    """The status a process exits with after ``sys.exit(code)``, kept within int64."""
    if code is None:
        return 0
    if type(code) is int:
        return code if EXIT_CODE_MIN <= code <= EXIT_CODE_MAX else 1
    return 1  # a message: Python prints it and exits with 1


def _at_exit() -> None:
    run = _current
    if run is not None and _owns(run):
        run.finish()
