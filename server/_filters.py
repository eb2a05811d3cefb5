"""Run filters in the style of wandb's (MongoDB-like) query documents.

A filter is a JSON object. Each field maps to a value (equality) or to an object of
operators; ``$and`` / ``$or`` take lists of filters::

    {"state": "finished", "config.lr": {"$gte": 0.001}, "tags": "baseline"}
    {"$or": [{"group": "a"}, {"summary.loss.min": {"$lt": 0.1}}]}

Fields: ``state``, ``group``, ``job_type``, ``tags``, ``name``, ``id``, ``host``, ``user`` (the
user whose API key created the run), ``config.<key>``,
``summary.<key>`` (dots walk into nested maps). Operators: ``$eq $ne $gt $gte $lt $lte $in
$nin $exists``. On ``tags`` (a list), equality means "has this tag" and ``$in`` means "has
any of these". Comparing values of different types (or a missing field) is false.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from ._nesting import check_depth
from .errors import BadRequest

Predicate = Callable[[dict[str, Any]], bool]
_MISSING = object()
TOP_FIELDS = frozenset({"state", "group", "job_type", "tags", "name", "id", "host", "user"})
_ORDER = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")


def parse(text: str | None) -> Predicate:
    """The predicate for a ``filters=`` query parameter (``None``/empty: every run)."""
    if not text:
        return lambda run: True
    check_depth(text.encode(), "filters")  # compiling and matching recurse per level
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"filters is not valid JSON ({exc}); pass a JSON object") from exc
    return compile_filter(spec)


def compile_filter(spec: Any) -> Predicate:
    if not isinstance(spec, dict):
        raise BadRequest(f"a filter must be a JSON object, got {json.dumps(spec)}")
    parts = [_compile_item(key, value) for key, value in spec.items()]
    return lambda run: all(part(run) for part in parts)


def _compile_item(key: str, value: Any) -> Predicate:
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise BadRequest(f"{key} takes a non-empty list of filters")
        subs = [compile_filter(v) for v in value]
        if key == "$and":
            return lambda run: all(sub(run) for sub in subs)
        return lambda run: any(sub(run) for sub in subs)
    if key.startswith("$"):
        raise BadRequest(f"unknown filter operator {key!r} at the top level; use $and or $or")
    path = _field_path(key)
    if isinstance(value, dict) and any(k.startswith("$") for k in value):
        tests = [_compile_op(key, op, arg) for op, arg in value.items()]
    else:
        tests = [_compile_op(key, "$eq", value)]
    return lambda run: all(test(_lookup(run, path)) for test in tests)


def _field_path(key: str) -> list[str]:
    head, _, rest = key.partition(".")
    if head in ("config", "summary") and rest:
        return [head, *rest.split(".")]
    if key in TOP_FIELDS:
        return [key]
    raise BadRequest(
        f"filter field {key!r} is not supported; use one of {', '.join(sorted(TOP_FIELDS))}, "
        "config.<key> or summary.<key>"
    )


def _lookup(run: dict[str, Any], path: list[str]) -> Any:
    value: Any = run
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _equal(field: Any, want: Any) -> bool:
    if isinstance(field, list) and not isinstance(want, list):
        return any(_equal(item, want) for item in field)
    if type(field) is bool or type(want) is bool:
        return type(field) is type(want) and field == want
    return bool(field == want)


def _ordered(compare: Callable[[Any, Any], bool], field: Any, want: Any) -> bool:
    numeric = (int, float)
    if type(field) is bool or type(want) is bool:
        return False
    if isinstance(field, numeric) and isinstance(want, numeric):
        return compare(field, want)
    if isinstance(field, str) and isinstance(want, str):
        return compare(field, want)
    return False


def _compile_op(key: str, op: str, arg: Any) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda v: v is not _MISSING and _equal(v, arg)
    if op == "$ne":
        return lambda v: v is _MISSING or not _equal(v, arg)
    if op in _ORDER:
        compare = _ORDER[op]
        return lambda v: v is not _MISSING and _ordered(compare, v, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise BadRequest(f"{op} on {key!r} takes a list, got {json.dumps(arg)}")
        if op == "$in":
            return lambda v: v is not _MISSING and any(_equal(v, a) for a in arg)
        return lambda v: v is _MISSING or not any(_equal(v, a) for a in arg)
    if op == "$exists":
        return lambda v: (v is not _MISSING) == bool(arg)
    raise BadRequest(
        f"unknown filter operator {op!r} on {key!r}; use one of {', '.join(_OPERATORS)}"
    )
