"""What a stored record may hold: the one place the rules are written down.

These are pure functions over decoded records (no database, no server errors), built on the
limits in :mod:`trackd._wire.limits` that the training process checks at the call site, so
they can move into ``trackd._wire`` whole. Each returns ``None`` for a good record or value, or a sentence saying what is wrong:
the record kind, the field or key, the offending value or type, and what is allowed.

Values (config, summary and history values, at any depth):

- ``None``, ``bool``, ``float`` (NaN and the infinities included), ``int`` from -2**63 to
  2**63-1 (history values also up to 2**64-1, as numpy's uint64 logs them), ``str`` without
  a NUL character (PostgreSQL text cannot hold one) and at most 1 MiB of UTF-8;
- lists of values and maps from keys to values, nested at most ``MAX_DEPTH`` (32) deep. Real
  configs nest a handful of levels (a Hydra config rarely passes 8); 32 leaves room for any
  of them while every reader (msgpack packs at most 511 levels, Python recurses about 1000
  frames deep) stays far from its own limit;
- never bytes, and never msgpack ext types (``ExtType``, ``Timestamp``): JSON has no way to
  show them.

Keys (of a record's map and of nested maps): ``str``, without NUL, at most ``MAX_KEY_LEN``
(512) characters.

Record fields: ``step`` and ``seq`` are ints in int64 (``seq`` >= 1, checked with the batch);
``exit_code`` an int in int64 or nil (the client sends int32; Windows codes such as
0xC0000005 pass int32, and the column is BIGINT on both backends); times (``start_time``, a
History's and a Finish's ``time``) finite floats, or ints in int64, in seconds since the
epoch; text fields str without NUL (or nil); ``tags`` a list of such str; a RunUpdate's keys
are among ``UPDATABLE_FIELDS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgpack
from trackd._wire import media
from trackd._wire import records as p
from trackd._wire.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    MAX_KEY_LEN,
    UINT64_MAX,
    str_too_long,
    utf8_size,
)
from trackd._wire.limits import MAX_VALUE_BYTES as MAX_STR_BYTES
from trackd._wire.summary import GOALS, parse_summary_modes

FINISH_STATES = frozenset({"finished", "failed", "crashed"})

_VALUES = "values are None, bool, int, float, str, or lists and str-keyed maps of those"
SYSTEM_PREFIX = "system/"  # SystemStats keys; they live on their own axis (see _system_stats)
_TEXT_FIELDS = ("name", "group", "job_type", "notes", "host", "program", "git_commit")


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, msgpack.Timestamp):
        return "a msgpack Timestamp (ext type -1)"
    if isinstance(value, msgpack.ExtType):
        return f"a msgpack ext type {value.code}"
    return type(value).__name__


def str_problem(value: str) -> str | None:
    """What is wrong with a str value (a NUL, or more than 1 MiB), or ``None``."""
    if "\x00" in value:
        return f"a str holding a NUL character (\\x00) ({show(value)}); strings may not hold NUL"
    if str_too_long(value):
        return (
            f"a str of {utf8_size(value)} bytes; a str may be at most {MAX_STR_BYTES} bytes "
            "(1 MiB), log a smaller value or upload a file"
        )
    return None


def key_problem(key: Any) -> str | None:
    """What is wrong with a map key, or ``None``; the sentence starts with the key."""
    if type(key) is not str:
        return f"{show(key)} is {_type_name(key)}; keys must be str"
    if "\x00" in key:
        return f"{show(key)} holds a NUL character (\\x00); keys may not hold NUL"
    if len(key) > MAX_KEY_LEN:
        return f"{show(key, 40)} is {len(key)} characters long; keys may have at most {MAX_KEY_LEN}"
    return None


def _int_problem(value: int, wide: bool) -> str | None:
    top = UINT64_MAX if wide else INT64_MAX
    if INT64_MIN <= value <= top:
        return None
    allowed = "-2**63 to 2**64-1" if wide else "-2**63 to 2**63-1 (int64)"
    return f"the int {value}, outside int64; ints are from {allowed}"


def value_problem(value: Any, wide_ints: bool = False) -> str | None:
    """What is wrong with one value (walked without recursion), or ``None``.

    ``wide_ints`` also allows ints up to 2**64-1 (history values). The sentence starts with a
    verb, to follow "value for key 'k' ": ``value_problem(b"x") == "is bytes; values are ..."``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is float or kind is bool or item is None:
            continue
        verb = "is" if depth == 0 else "holds"
        if kind is int:
            problem = _int_problem(item, wide_ints)
        elif kind is str:
            problem = str_problem(item)
        elif kind is list or kind is dict:
            if depth >= MAX_DEPTH:
                return f"is nested more than {MAX_DEPTH} deep; nest lists and maps at most {MAX_DEPTH} levels"
            if kind is dict:
                for key in item:
                    bad_key = key_problem(key)
                    if bad_key is not None:
                        return f"holds a map whose key {bad_key}"
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
            continue
        else:
            return f"{verb} {_type_name(item)}; {_VALUES}"
        if problem is not None:
            return f"{verb} {problem}"
    return None


_GOOD_KEYS: set[str] = set()  # keys key_problem passed (a pure rule, so safe to remember)
_GOOD_KEYS_MAX = 100_000
_PLAIN_VALUES = frozenset({float, bool, type(None)})


def plain_history(fields: list[Any]) -> bool:
    """True if a decoded History array certainly passes every rule (and ``from_fields``):
    an int64 step, a finite float time, and a map of keys seen valid before to floats, bools
    or None. Most rows are such; checking them this way skips the per-value walk."""
    if len(fields) != 6 or fields[0] != p.HISTORY:
        return False
    step, t, data = fields[3], fields[4], fields[5]
    return (
        type(step) is int
        and INT64_MIN <= step <= INT64_MAX
        and type(t) is float
        and math.isfinite(t)
        and type(data) is dict
        and data.keys() <= _GOOD_KEYS
        and set(map(type, data.values())) <= _PLAIN_VALUES
    )


def map_problem(what: str, data: Any, wide_ints: bool = False) -> str | None:
    """What is wrong with a record's map of keys to values (``what`` is e.g. "Config")."""
    if type(data) is not dict:
        return f"{what} data is {_type_name(data)}; it must be a map of str keys to values"
    top = UINT64_MAX if wide_ints else INT64_MAX
    for key, value in data.items():
        # the common cases inline: this runs for every value of every History record
        if key not in _GOOD_KEYS:
            if type(key) is not str or len(key) > MAX_KEY_LEN or "\x00" in key:
                return f"{what} key {key_problem(key)}"
            if len(_GOOD_KEYS) >= _GOOD_KEYS_MAX:
                _GOOD_KEYS.clear()
            _GOOD_KEYS.add(key)
        kind = type(value)
        if kind is float or kind is bool or value is None:
            continue
        if kind is int and INT64_MIN <= value <= top:
            continue
        if kind is str and len(value) * 4 <= MAX_STR_BYTES and "\x00" not in value:
            continue
        bad_value = value_problem(value, wide_ints)
        if bad_value is not None:
            return f"{what} value for key {show(key)} {bad_value}"
    return None


def int64_problem(what: str, value: Any, nullable: bool = False) -> str | None:
    """``what`` (e.g. "History step") must be an int in int64 (or nil when ``nullable``)."""
    if value is None and nullable:
        return None
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return None
    allowed = f"{what.split()[-1]}s are ints from -2**63 to 2**63-1" + (
        " or nil" if nullable else ""
    )
    if type(value) is int:
        return f"{what} {value} is outside int64; {allowed}"
    return f"{what} {show(value)} is {_type_name(value)}; {allowed}"


def time_problem(what: str, value: Any, nullable: bool = False) -> str | None:
    """``what`` must be a finite float or an int in int64: seconds since the epoch."""
    if value is None and nullable:
        return None
    if type(value) is float and math.isfinite(value):
        return None
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return None
    return (
        f"{what} {show(value)} ({_type_name(value)}) is not a finite number; times are finite "
        "floats or ints in int64, seconds since the epoch"
    )


def text_problem(what: str, value: Any) -> str | None:
    """``what`` must be a str without NUL, of at most 1 MiB, or nil."""
    if value is None:
        return None
    if type(value) is not str:
        return f"{what} {show(value)} is {_type_name(value)}; it must be a str or nil"
    problem = str_problem(value)
    return None if problem is None else f"{what} is {problem}"


def _first(*problems: str | None) -> str | None:
    return next((problem for problem in problems if problem is not None), None)


def _tags_problem(tags: Any, kind: str = "RunStart") -> str | None:
    if tags is None:
        return None
    if type(tags) is not list:
        return f"{kind} tags {show(tags)} is {_type_name(tags)}; tags are a list of str"
    for tag in tags:
        if type(tag) is not str:
            return f"{kind} tag {show(tag)} is {_type_name(tag)}; tags are str"
        problem = text_problem(f"{kind} tag", tag)
        if problem is not None:
            return problem
    return None


def _run_start(r: p.RunStart) -> str | None:
    return _first(
        *(text_problem(f"RunStart {field}", getattr(r, field)) for field in _TEXT_FIELDS),
        _tags_problem(r.tags),
        time_problem("RunStart start_time", r.start_time, nullable=True),
        map_problem("RunStart config", r.config if r.config is not None else {}),
        map_problem("RunStart environment", r.environment or {}),
    )


def _output(r: p.Output) -> str | None:
    if r.stream not in ("stdout", "stderr"):
        return f"Output stream {show(r.stream)} is not 'stdout' or 'stderr'"
    if type(r.text) is not str:
        return f"Output text {show(r.text)} is {_type_name(r.text)}; it must be a str"
    return _first(time_problem("Output time", r.time), text_problem("Output text", r.text))


def _system_stats(r: p.SystemStats) -> str | None:
    problem = _first(time_problem("SystemStats time", r.time), map_problem("SystemStats", r.data))
    if problem is not None:
        return problem
    for key in r.data:
        if not key.startswith(SYSTEM_PREFIX):
            return f"SystemStats key {show(key)} does not start with {SYSTEM_PREFIX!r}"
    return None


def _history(r: p.History) -> str | None:
    return _first(
        int64_problem("History step", r.step),
        time_problem("History time", r.time),
        _history_rich(r.data),  # first: a raw image is named as such, not as "bytes"
        map_problem("History", r.data, wide_ints=True),
    )


def _metric(r: p.Metric) -> str | None:
    name = r.name
    if type(name) is not str or not name:
        return f"Metric name {show(name)} must be a non-empty str"
    bad_name = key_problem(name)
    if bad_name is not None:
        return f"Metric name {bad_name}"
    what = f"Metric {show(name)}"
    problem = _first(
        text_problem(f"{what}: step_metric", r.step_metric),
        text_problem(f"{what}: summary", r.summary),
    )
    if problem is not None:
        return problem
    if r.goal is not None and (type(r.goal) is not str or r.goal not in GOALS):
        return f"{what}: goal {show(r.goal)} is not one of {sorted(GOALS)}"
    try:
        parse_summary_modes(r.summary)
    except ValueError as exc:
        return f"{what}: {exc}"
    return None


def _finish(r: p.Finish) -> str | None:
    if type(r.state) is not str or r.state not in FINISH_STATES:
        return f"Finish state {show(r.state)} is not one of {sorted(FINISH_STATES)}"
    return _first(
        int64_problem("Finish exit_code", r.exit_code, nullable=True),
        time_problem("Finish time", r.time, nullable=True),
    )


def _run_update(r: p.RunUpdate) -> None | str:
    if type(r.data) is not dict:
        return f"RunUpdate data is {_type_name(r.data)}; it must be a map"
    for key, value in r.data.items():
        if key == "tags":
            problem = _tags_problem(value, "RunUpdate")
        elif key in p.UPDATABLE_FIELDS:
            problem = text_problem(f"RunUpdate {key}", value)
        else:
            problem = f"RunUpdate key {show(key)} is not one of {', '.join(p.UPDATABLE_FIELDS)}"
        if problem is not None:
            return problem
    return None


_SHA256_HEX = frozenset("0123456789abcdef")
_MAX_NAME = 1024


def file_name_problem(name: Any) -> str | None:
    """What is wrong with a saved file's name (a relative POSIX path), or ``None``; the
    sentence starts with the name."""
    if type(name) is not str:
        return f"name {show(name)} is {_type_name(name)}; it must be a str"
    parts = name.split("/")
    if (
        not name
        or len(name) > _MAX_NAME
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") or len(part.encode()) > 255 for part in parts)
    ):
        return (
            f"name {show(name)} is not allowed; use a relative path such as "
            "'checkpoints/model.pt' without '..', '.', empty parts, backslashes or NUL, "
            f"at most {_MAX_NAME} characters and 255 bytes a part"
        )
    return None


def sha256_problem(what: str, value: Any) -> str | None:
    """``what`` must be a SHA-256 as 64 lowercase hex digits."""
    if type(value) is str and len(value) == 64 and _SHA256_HEX.issuperset(value):
        return None
    return f"{what} {show(value)} is not a SHA-256 (64 lowercase hex digits)"


def _size_problem(what: str, value: Any) -> str | None:
    if type(value) is int and 0 <= value <= INT64_MAX:
        return None
    return f"{what} {show(value)} is not a size in bytes (an int from 0 to 2**63-1)"


def _file(r: p.File) -> str | None:
    bad_name = file_name_problem(r.name)
    if bad_name is not None:
        return f"File {bad_name}"
    what = f"File {show(r.name)}:"
    if r.policy not in media.SAVE_POLICIES:
        return f"{what} policy {show(r.policy)} is not one of {', '.join(media.SAVE_POLICIES)}"
    return _first(
        text_problem(f"{what} path", r.path),
        sha256_problem(f"{what} sha256", r.sha256),
        _size_problem(f"{what} size", r.size),
    )


def _image_file_problem(value: dict[str, Any]) -> str | None:
    problem = _first(
        sha256_problem("an image file's sha256", value.get("sha256")),
        _size_problem("an image file's size", value.get("size")),
    )
    masks = value.get("masks")
    if problem is None and masks is not None:
        if type(masks) is not dict:
            return f"an image file's masks {show(masks)} is not a map of group -> mask file"
        for group, mask in masks.items():
            if type(mask) is not dict:
                return f"mask {show(group)} is {_type_name(mask)}; a mask file is a map"
            problem = _first(
                sha256_problem(f"mask {show(group)}: sha256", mask.get("sha256")),
                _size_problem(f"mask {show(group)}: size", mask.get("size")),
            )
            if problem is not None:
                break
    return problem


def rich_value_problem(value: Any) -> str | None:
    """What is wrong with a typed map in a History row (or a list of them), or ``None``: raw
    media never reaches the server, and image files name their blobs by SHA-256."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
            continue
        if type(item) is not dict:
            continue
        kind = item.get(media.TYPE)
        if kind == media.IMAGE:
            return (
                "is a raw image (pixels); the daemon uploads images as files and sends "
                "image-file references, raw media is never stored: upload through trackd's daemon"
            )
        if kind == media.IMAGE_FILE:
            problem = _image_file_problem(item)
            if problem is not None:
                return f"holds {problem}"
        elif kind == media.TABLE and type(item.get("data")) is list:
            stack.extend(item["data"])
        elif kind == media.IMAGES and type(item.get("items")) is list:
            stack.extend(item["items"])
    return None


def _history_rich(data: Any) -> str | None:
    if type(data) is not dict:
        return None
    for key, value in data.items():
        if type(value) is dict or type(value) is list:
            problem = rich_value_problem(value)
            if problem is not None:
                return f"History value for key {show(key)} {problem}"
    return None


def _history_media(r: Any) -> str:
    return (
        "HistoryMedia (kind 8) holds raw media, which the daemon turns into files and sends "
        "as a History record; the server never stores raw media: upload through trackd's "
        "daemon (trackd sync)"
    )


_CHECKS: dict[int, Callable[[Any], str | None]] = {
    p.RUN_START: _run_start,
    p.HISTORY: _history,
    p.CONFIG: lambda r: map_problem("Config", r.data),
    p.SUMMARY: lambda r: map_problem("Summary", r.data),
    p.METRIC: _metric,
    p.FINISH: _finish,
    p.RUN_UPDATE: _run_update,
    p.HISTORY_MEDIA: _history_media,
    p.FILE: _file,
    p.OUTPUT: _output,
    p.SYSTEM_STATS: _system_stats,
}


def record_problem(record: Any) -> str | None:
    """What is wrong with a decoded stored record (a :mod:`trackd._wire.records` tuple), or ``None``.

    Example::

        >>> record_problem(p.History(p.HISTORY, "r", 5, 2**63, 1.0, {}))
        'History step 9223372036854775808 is outside int64; steps are ints from -2**63 to 2**63-1'
    """
    check = _CHECKS.get(record.kind)
    if check is None:
        return f"{type(record).__name__} (kind {record.kind}) is never stored"
    return check(record)
