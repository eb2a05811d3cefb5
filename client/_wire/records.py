"""The records trackd sends: training process -> daemon -> run log -> server (version 2).

Every record is a ``NamedTuple`` whose first field is its kind (a small int). A record is
encoded as a msgpack array of its fields in order, so the bytes the training process sends
are the bytes the daemon stores in the run log and the bytes the uploader forwards: nothing
is re-encoded on the way.

Stored records (they carry a per-run ``seq``, strictly increasing in a run log, and the
server applies each ``seq`` at most once):

    RunStart   the run's identity and metadata; written once per process that writes the run
    History    one committed row of ``log()``: step, wall time, flattened key -> value
    Config     config keys set or changed
    Summary    summary keys set explicitly by the user (``None`` value = key removed)
    Metric     a ``define_metric()`` call
    Finish     the run ended: state ``finished`` | ``failed`` | ``crashed``, exit code
    RunUpdate  run metadata changed after ``init()`` (``run.name = ...``): the changed keys
               of ``name``, ``notes``, ``tags``, ``group``, ``job_type``
    HistoryMedia  a History row holding raw media (see :mod:`trackd._wire.media`); the
               daemon turns it into files and uploads it as a History record with its seq
    File       a file saved with the run (``trackd.save``): name in the run, local path,
               policy; the daemon fills in ``sha256`` and ``size`` when it uploads it
    Output     console text the run's process printed (stdout or stderr), complete lines
    SystemStats one sample of system metrics (``system/...`` keys) on their own time axis;
               it never moves the user's step

Control messages (client <-> daemon only, never stored, ``seq`` is 0):

    Attach     a client process announces a run it writes, and where its log lives; from
               version 2 it carries the writer's host and asks for an Attached answer
    Attached   daemon -> client: the answer to an Attach: accepted (with the run log's last
               durable seq and the directory the daemon writes it in) or refused (another
               live process writes that run: its pid and host)
    Nack       daemon -> client: records arrived for a run the daemon has no writer for;
               the client attaches again and resends every record not acked
    Flush      ask the daemon to make everything up to ``seq`` durable now and ack it
    Ack        daemon -> client: every record of ``run_id`` up to ``seq`` is durable, and
               how far its upload got
    Sync       client -> daemon: upload an existing run log (``trackd sync``)
    Sample     daemon -> client: a system-metrics sample the daemon's sampler took for the
               client's process tree and machine; the client's I/O thread stores it as a
               ``SystemStats`` record in its own run log (one writer per log stays true)

Compatibility: a decoder accepts arrays longer than the class it knows (fields added by a
newer writer are dropped) and shorter ones (missing trailing fields take their defaults).
Version 2 added ``Attach.host`` and ``Attach.handshake`` and the kinds ``Attached`` and
``Nack``; a version 1 client sends no ``handshake`` and gets no ``Attached`` answer.
Version 3 added the stored kinds ``HistoryMedia`` and ``File``.
Version 4 added writers (several processes writing one run, each with its own run log and
its own seqs: ``Attach.writer``, ``RunStart.writer``/``primary``; the server applies each
(run, writer)'s seqs exactly once; ``""`` is the run's only or primary writer), the run
environment (``RunStart.environment``), the stored kinds ``Output`` and ``SystemStats`` and
the control kind ``Sample``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

PROTOCOL_VERSION = 4

# Record kinds. Numbers are part of the on-disk format: never reuse or renumber one.
RUN_START = 1
HISTORY = 2
CONFIG = 3
SUMMARY = 4
METRIC = 5
FINISH = 6
RUN_UPDATE = 7
HISTORY_MEDIA = 8
FILE = 9
OUTPUT = 10
SYSTEM_STATS = 11
ATTACH = 20
FLUSH = 21
ACK = 22
SYNC = 23
ATTACHED = 24
NACK = 25
SAMPLE = 26

STORED_KINDS = frozenset(
    {
        RUN_START,
        HISTORY,
        CONFIG,
        SUMMARY,
        METRIC,
        FINISH,
        RUN_UPDATE,
        HISTORY_MEDIA,
        FILE,
        OUTPUT,
        SYSTEM_STATS,
    }
)
UPDATABLE_FIELDS = ("name", "notes", "tags", "group", "job_type")


class RunStart(NamedTuple):
    kind: int
    run_id: str
    seq: int
    entity: str | None
    project: str
    name: str
    group: str | None
    job_type: str | None
    tags: list[str]
    notes: str | None
    config: dict[str, Any]
    start_time: float
    host: str
    pid: int
    program: str | None
    git_commit: str | None
    mode: str
    resumed: bool = False
    start_step: int = 0
    # version 4
    writer: str = ""  # this process's writer label in a shared run ("" = the only writer)
    primary: bool = True  # the run ends (finished/crashed) with its primary writer
    environment: dict[str, Any] | None = None  # os, python, args, cwd, git, cpus, gpus ...


class History(NamedTuple):
    kind: int
    run_id: str
    seq: int
    step: int
    time: float
    data: dict[str, Any]


class Config(NamedTuple):
    kind: int
    run_id: str
    seq: int
    data: dict[str, Any]


class Summary(NamedTuple):
    kind: int
    run_id: str
    seq: int
    data: dict[str, Any]


class Metric(NamedTuple):
    kind: int
    run_id: str
    seq: int
    name: str
    step_metric: str | None
    summary: str | None
    goal: str | None
    hidden: bool = False


class Finish(NamedTuple):
    kind: int
    run_id: str
    seq: int
    state: str
    exit_code: int | None
    time: float


class RunUpdate(NamedTuple):
    kind: int
    run_id: str
    seq: int
    data: dict[str, Any]


class HistoryMedia(NamedTuple):
    """A History row holding raw media: the same fields, another kind."""

    kind: int
    run_id: str
    seq: int
    step: int
    time: float
    data: dict[str, Any]


class File(NamedTuple):
    """A file saved with the run. ``name`` is its relative POSIX path in the run, ``path``
    where it lies on the training machine, ``policy`` one of ``live``, ``now``, ``end``."""

    kind: int
    run_id: str
    seq: int
    name: str
    path: str
    policy: str
    sha256: str | None = None
    size: int | None = None


class Output(NamedTuple):
    """Console text: ``stream`` is ``stdout`` or ``stderr``; ``text`` holds one or more
    complete lines (a ``\r``-driven progress bar is kept at its last state)."""

    kind: int
    run_id: str
    seq: int
    time: float
    stream: str
    text: str


class SystemStats(NamedTuple):
    """One system-metrics sample: flat ``system/...`` key -> number, taken at ``time``."""

    kind: int
    run_id: str
    seq: int
    time: float
    data: dict[str, Any]


class Attach(NamedTuple):
    kind: int
    run_id: str
    seq: int
    run_dir: str
    pid: int
    first_seq: int
    mode: str = "offline"
    upload: UploadTarget | None = None
    host: str = ""
    handshake: bool = False  # version 2: answer with an Attached record
    writer: str = ""  # version 4: the writer label (one run log per run and writer)


class Attached(NamedTuple):
    """Daemon -> client: the answer to an Attach with ``handshake``.

    Accepted: ``last_seq`` is the highest seq durable in the run log the daemon writes,
    which lives in ``run_dir`` (the directory of an earlier attempt of the run, when this
    machine holds one). Refused: ``holder_pid`` on ``holder_host`` writes the run now."""

    kind: int
    run_id: str
    seq: int
    accepted: bool
    last_seq: int = 0
    run_dir: str = ""
    holder_pid: int = 0
    holder_host: str = ""


class Nack(NamedTuple):
    """Daemon -> client: records of ``run_id`` arrived and were not stored (no writer)."""

    kind: int
    run_id: str
    seq: int
    reason: str = ""


class UploadTarget(NamedTuple):
    """Where (and as whom) the daemon uploads a run: sent inside Attach and Sync."""

    base_url: str
    api_key: str
    entity: str | None
    project: str


class Sync(NamedTuple):
    """Client -> daemon: upload the run log in ``run_dir`` (``trackd sync``)."""

    kind: int
    run_id: str
    seq: int
    run_dir: str
    upload: UploadTarget


class Sample(NamedTuple):
    """Daemon -> client: a system-metrics sample for the client's run (``seq`` is 0)."""

    kind: int
    run_id: str
    seq: int
    time: float
    data: dict[str, Any]


class Flush(NamedTuple):
    kind: int
    run_id: str
    seq: int


class Ack(NamedTuple):
    """Daemon -> client: ``seq`` is durable; ``uploaded`` is the server's durable seq (-1:
    not uploading), ``upload_note`` says why an upload waits or failed, ``rejected`` lists
    ``[seq, reason]`` of records the server refused."""

    kind: int
    run_id: str
    seq: int
    error: str | None = None
    uploaded: int = -1
    upload_note: str | None = None
    upload_failed: bool = False
    rejected: list[list[Any]] | None = None


Record = (
    RunStart
    | History
    | Config
    | Summary
    | Metric
    | Finish
    | RunUpdate
    | HistoryMedia
    | File
    | Output
    | SystemStats
    | Attach
    | Flush
    | Ack
    | Sync
    | Attached
    | Nack
    | Sample
)

_BY_KIND: dict[int, Any] = {
    RUN_START: RunStart,
    HISTORY: History,
    CONFIG: Config,
    SUMMARY: Summary,
    METRIC: Metric,
    FINISH: Finish,
    RUN_UPDATE: RunUpdate,
    HISTORY_MEDIA: HistoryMedia,
    FILE: File,
    OUTPUT: Output,
    SYSTEM_STATS: SystemStats,
    ATTACH: Attach,
    FLUSH: Flush,
    ACK: Ack,
    SYNC: Sync,
    ATTACHED: Attached,
    NACK: Nack,
    SAMPLE: Sample,
}


KIND_NAMES: dict[int, str] = {kind: cls.__name__ for kind, cls in _BY_KIND.items()}


class DecodeError(ValueError):
    """Bytes that are not a trackd record."""


def new_packer() -> msgpack.Packer:
    """A packer for the hot path; reuse it, one per thread."""
    return msgpack.Packer(use_bin_type=True)


def keeping_packer() -> msgpack.Packer:
    """A hot-path packer that keeps what it packed in its own reused buffer (``getbuffer()``,
    then ``reset()``) instead of returning new bytes: for rows of images, whose bytes are
    copied once more anyway, into memory that lives until the daemon has them."""
    return msgpack.Packer(use_bin_type=True, autoreset=False)


def encode(record: Record) -> bytes:
    """The record as msgpack bytes (an array of its fields)."""
    return msgpack.packb(record, use_bin_type=True)


HistoryEncoder = Callable[[str, int, int, float, dict[str, Any]], bytes]


def history_encoder(kind: int = HISTORY) -> HistoryEncoder:
    """``encode(History(HISTORY, run_id, seq, step, time, data))`` without building the tuple
    class, with a packer of its own: the hot path of ``log()``. One per thread; a test checks
    both give the same bytes. ``kind=HISTORY_MEDIA`` encodes a ``HistoryMedia`` row."""
    pack = new_packer().pack

    def encode_history(
        run_id: str, seq: int, step: int, time: float, data: dict[str, Any]
    ) -> bytes:
        return pack((kind, run_id, seq, step, time, data))  # type: ignore[no-any-return]

    return encode_history


def decode(payload: bytes) -> Record:
    """Bytes from :func:`encode` back to a record; raises :class:`DecodeError`."""
    return from_fields(unpack(payload))


def from_fields(fields: Any) -> Record:
    """A decoded msgpack array back to its record class."""
    if not isinstance(fields, list) or not fields or type(fields[0]) is not int:
        raise DecodeError("a record is a msgpack array starting with its kind")
    cls = _BY_KIND.get(fields[0])
    if cls is None:
        raise DecodeError(f"unknown record kind {fields[0]}")
    n = len(cls._fields)
    required = n - len(cls._field_defaults)
    if len(fields) < required:
        raise DecodeError(f"{cls.__name__} needs {required} fields, got {len(fields)}")
    try:
        return cls(*fields[:n])  # type: ignore[no-any-return]
    except TypeError as exc:
        raise DecodeError(str(exc)) from exc


_ROWS = frozenset({HISTORY, HISTORY_MEDIA})
_REQUIRED = {k: len(c._fields) - len(c._field_defaults) for k, c in _BY_KIND.items()}


def is_stored(fields: Any) -> bool:
    """Cheap shape check of a decoded array: a stored record the daemon may append."""
    return (
        type(fields) is list
        and len(fields) >= 3
        and fields[0] in STORED_KINDS
        and type(fields[1]) is str
        and type(fields[2]) is int
        and fields[2] > 0
        and len(fields) >= _REQUIRED[fields[0]]
        and (fields[0] not in _ROWS or (type(fields[3]) is int and type(fields[5]) is dict))
    )


def seq_of(payload: bytes | memoryview) -> int:
    """The ``seq`` of an encoded stored record (its third field)."""
    fields = unpack(payload)
    if not isinstance(fields, list) or len(fields) < 3 or type(fields[2]) is not int:
        raise DecodeError("a stored record is an array whose third field is its int seq")
    return fields[2]


def unpack(payload: bytes | memoryview) -> Any:
    """msgpack bytes to Python data, or :class:`DecodeError`."""
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"not msgpack: {exc}") from exc
