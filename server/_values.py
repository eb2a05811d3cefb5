"""History values in and out of the database, and values in JSON.

A value is stored as ``(kind, num, ival, text)``; see :mod:`._schema` for the table of kinds.
JSON cannot carry NaN or infinities, so JSON answers spell them ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``; msgpack answers carry real floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

from trackd._wire.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_LEN,
    MAX_VALUE_BYTES,
    UINT64_MAX,
    str_too_long,
)

from .errors import InvalidRecord

K_NULL, K_INT, K_BIGINT, K_BOOL, K_FLOAT, K_NAN, K_POS_INF, K_NEG_INF, K_STR, K_JSON = range(10)

StoredValue = tuple[int, float | None, int | None, str | None]

_NON_FINITE: dict[int, float] = {K_NAN: math.nan, K_POS_INF: math.inf, K_NEG_INF: -math.inf}


def check_key(key: Any) -> str:
    if type(key) is not str:
        raise InvalidRecord(f"history key {key!r} is a {type(key).__name__}; keys must be str")
    if len(key) > MAX_KEY_LEN:
        raise InvalidRecord(
            f"history key {key[:40]!r}... is {len(key)} characters long; "
            f"keys may have at most {MAX_KEY_LEN}"
        )
    return key


def _too_big(key: str, size: int) -> InvalidRecord:
    return InvalidRecord(
        f"value for key {key!r} is {size} bytes; a single value may be at most "
        f"{MAX_VALUE_BYTES} bytes (1 MiB), log a smaller value or upload a file"
    )


def _encode_json(key: str, v: Any) -> StoredValue:
    try:
        doc = json.dumps(v, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(
            f"value for key {key!r} is a {type(v).__name__} that cannot be stored ({exc}); "
            "log numbers, strings, bools, None, or dicts/lists of those"
        ) from exc
    if len(doc) > MAX_VALUE_BYTES:
        raise _too_big(key, len(doc))
    return (K_JSON, None, None, doc)


def encode_value(key: str, v: Any) -> StoredValue:
    """One history value as ``(kind, num, ival, text)``, or :class:`InvalidRecord`."""
    t = type(v)
    if t is float:
        if v - v == 0.0:  # finite
            return (K_FLOAT, v, None, None)
        return (K_NAN if v != v else K_POS_INF if v > 0 else K_NEG_INF, None, None, None)
    if t is int:
        if INT64_MIN <= v <= INT64_MAX:
            return (K_INT, None, v, None)
        if v <= UINT64_MAX:
            return (K_BIGINT, None, None, str(v))
        raise InvalidRecord(f"value for key {key!r} is an int that does not fit in 64 bits")
    if t is bool:
        return (K_BOOL, None, int(v), None)
    if v is None:
        return (K_NULL, None, None, None)
    if t is str:
        if str_too_long(v):
            raise _too_big(key, len(v.encode()))
        return (K_STR, None, None, v)
    if t is dict or t is list:
        return _encode_json(key, v)
    raise InvalidRecord(
        f"value for key {key!r} is a {t.__name__}; history values are int, float, bool, str, "
        "None, or a dict/list of those"
    )


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
        return json.loads(text or "null")
    return None


def _json_safe(obj: Any) -> Any:
    if type(obj) is float and not math.isfinite(obj):
        return "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def to_json(obj: Any) -> bytes:
    """``obj`` as strict JSON, with non-finite floats spelled as strings."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError):
        return json.dumps(_json_safe(obj), allow_nan=False, separators=(",", ":")).encode()
