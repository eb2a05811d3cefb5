"""History values in and out of the database, and values in answers.

A value is stored as ``(kind, num, ival, text)``; see :mod:`._schema` for the table of kinds.
Ingest accepts only the values :mod:`._record_rules` allows; :func:`render` turns whatever is
stored (rows written before those rules, too) into something both answers can carry. JSON
cannot carry NaN or infinities, so JSON answers spell them ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``; msgpack answers carry real floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
from trackd._wire.limits import INT64_MAX, INT64_MIN, MAX_VALUE_BYTES, UINT64_MAX

from .errors import InvalidRecord

# deeper than anything ingest accepts (32, plus a summary's aggregate map); older rows may be
# deeper, and their depths past this are shown as a marker instead of recursing on
MAX_RENDER_DEPTH = 64
TOO_DEEP = "<nested too deep>"

K_NULL, K_INT, K_BIGINT, K_BOOL, K_FLOAT, K_NAN, K_POS_INF, K_NEG_INF, K_STR, K_JSON = range(10)

StoredValue = tuple[int, float | None, int | None, str | None]

_NON_FINITE: dict[int, float] = {K_NAN: math.nan, K_POS_INF: math.inf, K_NEG_INF: -math.inf}


def _encode_json(key: str, v: Any) -> StoredValue:
    try:
        doc = json.dumps(v, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRecord(
            f"value for key {key!r} is a {type(v).__name__} that cannot be stored ({exc}); "
            "log numbers, strings, bools, None, or dicts/lists of those"
        ) from exc
    if len(doc) > MAX_VALUE_BYTES:
        raise InvalidRecord(
            f"value for key {key!r} is {len(doc)} bytes as JSON; a list or map value may be "
            f"at most {MAX_VALUE_BYTES} bytes (1 MiB), log a smaller value or upload a file"
        )
    return (K_JSON, None, None, doc)


def encode_value(key: str, v: Any) -> StoredValue:
    """One history value, already checked by :mod:`._record_rules`, as ``(kind, num, ival,
    text)``; a list or map too big as JSON is :class:`InvalidRecord`."""
    t = type(v)
    if t is float:
        if v - v == 0.0:  # finite
            return (K_FLOAT, v, None, None)
        return (K_NAN if v != v else K_POS_INF if v > 0 else K_NEG_INF, None, None, None)
    if t is int:
        if INT64_MIN <= v <= INT64_MAX:
            return (K_INT, None, v, None)
        return (K_BIGINT, None, None, str(v))
    if t is bool:
        return (K_BOOL, None, int(v), None)
    if v is None:
        return (K_NULL, None, None, None)
    if t is str:
        return (K_STR, None, None, v)
    return _encode_json(key, v)


def decode_value(kind: int, num: float | None, ival: int | None, text: str | None) -> Any:
    """The Python value stored as ``(kind, num, ival, text)``."""
    if kind == K_FLOAT:
        return num
    if kind == K_INT:
        return ival
    if kind == K_BOOL:
        return bool(ival)
    if kind == K_STR:
        return text
    if kind in _NON_FINITE:
        return _NON_FINITE[kind]
    if kind == K_BIGINT:
        return int(text or 0)
    if kind == K_JSON:
        try:
            return render(json.loads(text or "null"))
        except (ValueError, RecursionError):
            return f"<unreadable JSON value: {(text or '')[:40]!r}>"
    return None


def _render_scalar(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, msgpack.Timestamp):
        seconds, nanoseconds = divmod(obj.to_unix_nano(), 10**9)
        return f"<msgpack Timestamp {seconds}.{nanoseconds:09d}>"
    if isinstance(obj, msgpack.ExtType):
        return f"<msgpack ext type {obj.code}: {obj.data.hex()}>"
    if type(obj) is int and not INT64_MIN <= obj <= UINT64_MAX:
        return str(obj)  # neither msgpack nor every JSON reader takes it as a number
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return f"<{type(obj).__name__}>"


def _render_key(key: Any) -> str:
    return key if type(key) is str else str(_render_scalar(key))


def render(obj: Any, depth: int = 0) -> Any:
    """``obj`` as values a JSON or msgpack answer can carry, whatever was stored.

    Bytes become hex, msgpack ext values a tagged string, keys str, and anything nested
    deeper than ``MAX_RENDER_DEPTH`` the string ``"<nested too deep>"``::

        >>> render({b"k": msgpack.ExtType(7, b"\\x01")})
        {'6b': '<msgpack ext type 7: 01>'}
    """
    if isinstance(obj, dict):
        if depth >= MAX_RENDER_DEPTH:
            return TOO_DEEP
        return {_render_key(k): render(v, depth + 1) for k, v in obj.items()}
    if type(obj) is list or type(obj) is tuple:  # not ExtType, a namedtuple
        if depth >= MAX_RENDER_DEPTH:
            return TOO_DEEP
        return [render(v, depth + 1) for v in obj]
    return _render_scalar(obj)


def _json_safe(obj: Any) -> Any:
    if type(obj) is float and not math.isfinite(obj):
        return "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def to_json(obj: Any) -> bytes:
    """``obj`` (already :func:`render`-ed) as strict JSON, non-finite floats spelled as strings."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError):
        return json.dumps(_json_safe(obj), allow_nan=False, separators=(",", ":")).encode()
