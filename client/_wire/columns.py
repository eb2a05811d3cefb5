"""Columnar History: many plain History records of one run as arrays (version 1).

The daemon's uploader turns each stretch of consecutive *plain* History records into one
element of an ingest body's ``records`` (ingest body version 2, :mod:`.ingest`), so the
server validates and stores them with numpy instead of one Python object per value. A
record is plain when its step is an int in int64, its time a finite float (or an int), its
keys str of at most ``MAX_KEY_LEN`` characters without NUL, and every value a float (NaN and
infinities included), an int that float64 holds exactly (``|v| <= 2**53``), a bool or None.
Any other record stays as it is, in its place: the body keeps seq order.

The element is a msgpack map (records are arrays, so the two cannot be confused)::

    {"columns": 1, "n": rows,
     "seq": i64[n], "step": i64[n], "time": f64[n],
     "keys": [[key, rows u32[m] | nil, values f64[m], kinds u8[m] | nil], ...]}

Arrays are little-endian bytes. Row ``i`` is the record whose seq is ``seq[i]`` (seqs
strictly increasing). A key's ``rows`` are the rows (ascending) that hold it, nil when every
row does; ``values`` its values in that order; ``kinds`` what each value was, nil when all
are ``FLOAT``: ``FLOAT``, ``INT`` (the int as a float), ``BOOL`` (0.0 or 1.0), ``NULL``
(0.0). :func:`decode` checks the shape (a broken element refuses the whole batch, like a
broken envelope); the server still checks keys and times by its record rules, row by row.

This module is imported by the daemon and the server only (it needs numpy).
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from .ingest import gc_paused
from .limits import INT64_MAX, INT64_MIN, MAX_KEY_LEN
from .records import HISTORY, DecodeError

COLUMNS_VERSION = 1
FLOAT, INT, BOOL, NULL = range(4)
EXACT_INT = 2**53  # ints up to this size travel as float64 exactly
MIN_ROWS = 8  # shorter stretches are not worth an element of their own

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_ABSENT = object()  # a key a row does not hold
_KIND_OF = {float: FLOAT, int: INT, bool: BOOL, type(None): NULL}
_PLAIN_TYPES = frozenset(_KIND_OF)
_FIELD = [operator.itemgetter(i) for i in range(6)]


@dataclass(frozen=True, slots=True)
class KeyColumn:
    """One key's values in a columnar element (``rows`` None: every row holds it)."""

    key: Any  # str from a well-behaved daemon; the server checks it by its key rule
    rows: npt.NDArray[np.uint32] | None
    values: F64
    kinds: npt.NDArray[np.uint8] | None

    def python_values(self) -> list[Any]:
        """The values as the Python values the records held."""
        values = self.values.tolist()
        if self.kinds is None:
            return values  # type: ignore[no-any-return]
        return [_python(v, k) for v, k in zip(values, self.kinds.tolist(), strict=True)]

    def last_value(self) -> Any:
        """The last value, as the Python value its record held."""
        kind = FLOAT if self.kinds is None else int(self.kinds[-1])
        return _python(float(self.values[-1]), kind)


def _python(v: float, kind: int) -> Any:
    if kind == FLOAT:
        return v
    if kind == INT:
        return int(v)
    return bool(v) if kind == BOOL else None


@dataclass(frozen=True, slots=True)
class Columns:
    """A decoded columnar element: ``n`` History rows."""

    seq: I64
    step: I64
    time: F64
    keys: list[KeyColumn]

    def __len__(self) -> int:
        return len(self.seq)


# -- the daemon's side -------------------------------------------------------------------
def build(payloads: list[bytes]) -> list[bytes]:
    """The elements of a version 2 body for ``payloads`` (encoded records in seq order):
    each stretch of at least ``MIN_ROWS`` plain History records becomes one columnar
    element, every other record stays as its bytes."""
    packer = msgpack.Packer(use_bin_type=True)
    try:
        with gc_paused():
            fields = msgpack.unpackb(
                packer.pack_array_header(len(payloads)) + b"".join(payloads),
                raw=False,
                strict_map_key=False,
            )
    except Exception:  # noqa: BLE001 - a record msgpack cannot read is sent as it is
        return payloads
    return [
        payloads[lo] if element is None else packer.pack(element)
        for lo, _hi, element in split(fields)
    ]


Stretch = tuple[int, int, dict[str, Any] | None]


def split(fields: list[Any]) -> list[Stretch]:
    """Decoded records (in seq order) cut into stretches: ``(lo, hi, element)`` when
    ``fields[lo:hi]`` are plain History records, ``element`` their columnar element;
    ``(i, i + 1, None)`` for a record that stays as it is. The server uses it too, on the
    records of a version 1 body: the same rows, stored the same way."""
    out: list[Stretch] = []
    if _uniform(fields):  # the common batch: History rows only, checked at C speed
        _stretch(fields, 0, out)
        return out
    start = 0
    for i, f in enumerate(fields):
        if not _candidate(f):
            _stretch(fields[start:i], start, out)
            out.append((i, i + 1, None))
            start = i + 1
    _stretch(fields[start:], start, out)
    return out


def _uniform(fields: list[Any]) -> bool:
    """True if every record is a History array of 6 fields with an int step, a float time
    and a map: candidates all (the per-row checks follow in :func:`_columns`)."""
    if set(map(type, fields)) != {list} or set(map(len, fields)) != {6}:
        return False
    kinds = list(map(_FIELD[0], fields))
    return (
        set(kinds) == {HISTORY}
        and set(map(type, kinds)) == {int}
        and set(map(type, map(_FIELD[2], fields))) == {int}
        and set(map(type, map(_FIELD[3], fields))) == {int}
        and set(map(type, map(_FIELD[4], fields))) == {float}
        and set(map(type, map(_FIELD[5], fields))) == {dict}
    )


def _candidate(f: Any) -> bool:
    return (
        type(f) is list
        and len(f) == 6
        and f[0] == HISTORY
        and type(f[0]) is int
        and type(f[2]) is int
        and type(f[3]) is int
        and (type(f[4]) is float or (type(f[4]) is int and INT64_MIN <= f[4] <= INT64_MAX))
        and type(f[5]) is dict
    )


def _stretch(fields: list[Any], base: int, out: list[Stretch]) -> None:
    """Append ``fields`` (candidates, from position ``base``) as columns, cut around the
    rows that are not plain."""
    if len(fields) < MIN_ROWS:
        out.extend((base + i, base + i + 1, None) for i in range(len(fields)))
        return
    element, bad = _columns(fields)
    if element is not None:
        out.append((base, base + len(fields), element))
        return
    start = 0
    for i in sorted(bad):
        _stretch(fields[start:i], base + start, out)
        out.append((base + i, base + i + 1, None))
        start = i + 1
    _stretch(fields[start:], base + start, out)


def _columns(fields: list[Any]) -> tuple[dict[str, Any] | None, set[int]]:
    """The element for ``fields``, or None and the rows that are not plain."""
    bad: set[int] = set()
    seqs, steps, times, datas = (list(map(_FIELD[i], fields)) for i in (2, 3, 4, 5))
    try:
        seq = np.array(seqs, dtype="<i8")
        step = np.array(steps, dtype=np.int64)
        time = np.array(times, dtype=np.float64)
    except OverflowError:
        for i, (q, s) in enumerate(zip(seqs, steps, strict=True)):
            if not (INT64_MIN <= q <= INT64_MAX and INT64_MIN <= s <= INT64_MAX):
                bad.add(i)
        return None, bad
    bad.update(np.flatnonzero(~np.isfinite(time)).tolist())
    shapes = dict.fromkeys(map(tuple, datas))  # the distinct key lists, in the order seen
    keys = dict.fromkeys(itertools.chain.from_iterable(shapes))
    columns = []
    for key in keys:
        if type(key) is not str or len(key) > MAX_KEY_LEN or "\0" in key:
            bad.update(i for i, d in enumerate(datas) if key in d)
            continue
        if all(key in shape for shape in shapes):
            values = list(map(operator.itemgetter(key), datas))
        else:
            values = list(map(operator.methodcaller("get", key, _ABSENT), datas))
        column = _key_column(key, values, bad)
        if column is not None:
            columns.append(column)
    if bad:
        return None, bad
    element = {
        "columns": COLUMNS_VERSION,
        "n": len(fields),
        "seq": seq.tobytes(),
        "step": step.astype("<i8", copy=False).tobytes(),
        "time": time.astype("<f8", copy=False).tobytes(),
        "keys": columns,
    }
    return element, bad


def _key_column(key: str, column: list[Any], bad: set[int]) -> list[Any] | None:
    """``[key, rows, values, kinds]`` for one key's column (``_ABSENT`` where a row lacks
    it), or None after adding the rows whose value is not plain to ``bad``."""
    types = set(map(type, column))
    rows = None
    if type(_ABSENT) in types:
        keep = [i for i, v in enumerate(column) if v is not _ABSENT]
        rows = np.array(keep, dtype="<u4").tobytes()
        column = [column[i] for i in keep]
        types.discard(type(_ABSENT))
    if types <= {float}:
        return [key, rows, np.array(column, dtype="<f8").tobytes(), None]
    if not types <= _PLAIN_TYPES or (int in types and not _small_ints(column)):
        positions = _positions(rows, len(column))
        bad.update(positions[i] for i, v in enumerate(column) if not _plain(v))
        return None
    kinds = np.array([_KIND_OF[type(v)] for v in column], dtype=np.uint8)
    values = np.array([0.0 if v is None else v for v in column], dtype="<f8")
    return [key, rows, values.tobytes(), kinds.tobytes()]


def _positions(rows: bytes | None, n: int) -> list[int]:
    if rows is None:
        return list(range(n))
    return np.frombuffer(rows, "<u4").tolist()  # type: ignore[no-any-return]


def _small_ints(column: list[Any]) -> bool:
    ints = [v for v in column if type(v) is int]
    return -EXACT_INT <= min(ints) and max(ints) <= EXACT_INT


def _plain(v: Any) -> bool:
    t = type(v)
    if t is int:
        return -EXACT_INT <= v <= EXACT_INT  # type: ignore[no-any-return]
    return t in _PLAIN_TYPES


# -- the server's side -------------------------------------------------------------------
def is_columns(element: Any) -> bool:
    """True if an element of a body's ``records`` is a columnar element (a map)."""
    return type(element) is dict


def decode(doc: dict[Any, Any]) -> Columns:
    """The arrays of a columnar element, or :class:`DecodeError` saying what is malformed."""
    if doc.get("columns") != COLUMNS_VERSION:
        raise DecodeError(
            f"columnar History version {doc.get('columns')!r} is not {COLUMNS_VERSION}; "
            "upgrade the server"
        )
    n = doc.get("n")
    if type(n) is not int or n < 1:
        raise DecodeError(f"columnar History n={n!r}; it must be an int >= 1")
    seq = _array(doc.get("seq"), "<i8", n, "seq").astype(np.int64)
    step = _array(doc.get("step"), "<i8", n, "step").astype(np.int64)
    time = _array(doc.get("time"), "<f8", n, "time").astype(np.float64)
    entries = doc.get("keys")
    if type(entries) is not list:
        raise DecodeError("columnar History keys must be a list of [key, rows, values, kinds]")
    seen: set[Any] = set()
    keys = []
    for entry in entries:
        column = _key(entry, n)
        if column.key in seen:
            raise DecodeError(f"columnar History names key {column.key!r} twice")
        seen.add(column.key)
        keys.append(column)
    return Columns(seq, step, time, keys)


def _array(raw: Any, dtype: str, count: int, what: str) -> np.ndarray[Any, Any]:
    size = np.dtype(dtype).itemsize
    if type(raw) is not bytes or len(raw) != size * count:
        got = len(raw) if type(raw) is bytes else type(raw).__name__
        raise DecodeError(f"columnar History {what} must be {count * size} bytes, got {got}")
    return np.frombuffer(raw, dtype)


def _key(entry: Any, n: int) -> KeyColumn:
    if type(entry) is not list or len(entry) != 4:
        raise DecodeError("each columnar History key is [key, rows, values, kinds]")
    key, raw_rows, raw_values, raw_kinds = entry
    rows = None
    m = n
    if raw_rows is not None:
        if type(raw_rows) is not bytes or len(raw_rows) % 4:
            raise DecodeError(f"columnar History rows of key {key!r} must be u32 bytes or nil")
        rows = np.frombuffer(raw_rows, "<u4").astype(np.uint32)
        m = len(rows)
        if m and (rows[-1] >= n or (m > 1 and not bool(np.all(rows[1:] > rows[:-1])))):
            raise DecodeError(f"columnar History rows of key {key!r} must ascend below n={n}")
    values = _array(raw_values, "<f8", m, f"values of key {key!r}").astype(np.float64)
    kinds = None
    if raw_kinds is not None:
        kinds = _array(raw_kinds, "u1", m, f"kinds of key {key!r}").astype(np.uint8)
        _check_kinds(key, values, kinds)
    return KeyColumn(key, rows, values, kinds)


def _check_kinds(key: Any, values: F64, kinds: npt.NDArray[np.uint8]) -> None:
    problem = None
    if bool(np.any(kinds > NULL)):
        problem = f"kinds are {FLOAT} to {NULL}"
    ints = values[kinds == INT]
    if len(ints) and not (np.all(np.abs(ints) <= EXACT_INT) and np.all(ints == np.trunc(ints))):
        problem = "an INT value must be a whole number within 2**53"
    flags = values[kinds == BOOL]
    if len(flags) and not np.all((flags == 0.0) | (flags == 1.0)):
        problem = "a BOOL value must be 0.0 or 1.0"
    if bool(np.any(values[kinds == NULL] != 0.0)):
        problem = "a NULL value must be 0.0"
    if problem is not None:
        raise DecodeError(f"columnar History key {key!r}: {problem}")
