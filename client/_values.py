"""Checking and flattening what a training script passes to ``log()``, ``config`` and
``summary``, by the rules of :mod:`trackd._wire.limits`.

``log()`` values are numbers, bools, strings, None, numpy and torch scalars, numpy arrays and
torch tensors (a list of up to 32 numbers, else a histogram), lists of numbers,
``trackd.Image`` (or a list of them), ``trackd.Histogram``, ``trackd.Table``, and dicts of
those (flattened to dotted keys). Anything else raises at the call site with the key, the
type and what to log instead. The common case, a flat dict of Python numbers, is checked in
one tight loop and passed through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._histogram import Histogram, array_value, number_list, tensor_value
from ._image import Image
from ._table import Table
from ._wire import media
from ._wire.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    MAX_KEY_LEN,
    UINT64_MAX,
    text_problem,
)


def check_log_data(data: Any) -> dict[str, Any]:
    """``data`` as a flat dict of plain values, or a clear ``TypeError``/``ValueError``."""
    if type(data) is dict:
        for k, v in data.items():
            t = type(v)
            if (
                (t is float or t is int or t is bool)
                and type(k) is str
                and len(k) <= MAX_KEY_LEN
                and "\0" not in k
            ):
                continue
            break
        else:
            return data
    elif not isinstance(data, Mapping):
        raise TypeError(
            f"log(): data is a {_describe(data)}; pass a dict of key -> value, "
            "e.g. trackd.log({'loss': 0.5})"
        )
    out: dict[str, Any] = {}
    _flatten(data, "", out, 0)
    return out


def check_ints(row: dict[str, Any]) -> dict[str, Any]:
    """Raise the clear error for an int msgpack cannot carry (the fast path lets ints by)."""
    for key, v in row.items():
        if type(v) is int and not INT64_MIN <= v <= UINT64_MAX:
            log_value(key, v)
    return row


def _flatten(data: Mapping[Any, Any], prefix: str, out: dict[str, Any], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise ValueError(
            f"log(): the dict under {prefix[:40]!r}... is nested more than {MAX_DEPTH} levels "
            "deep; log a flatter dict"
        )
    for k, v in data.items():
        if type(k) is not str:
            raise TypeError(
                f"log(): key {k!r} under {prefix or 'the top level'!r} is a "
                f"{type(k).__name__}; keys must be str, e.g. {{'{k}': ...}}"
            )
        key = prefix + k
        check_key("log()", key)
        if isinstance(v, Mapping):
            _flatten(v, key + ".", out, depth + 1)
        else:
            out[key] = log_value(key, v)


def check_key(where: str, key: str) -> str:
    """``key`` if every process can store it, else a ``ValueError`` naming it."""
    if len(key) > MAX_KEY_LEN:
        raise ValueError(
            f"{where}: key {key[:40]!r}... is {len(key)} characters long; "
            f"keys may have at most {MAX_KEY_LEN}"
        )
    if "\0" in key:
        raise ValueError(f"{where}: key {key!r} holds a NUL character; remove it")
    return key


def log_value(key: str, v: Any) -> Any:
    """One value made plain, or a clear error naming ``key``."""
    t = type(v)
    if t is float or t is int or t is bool or v is None:
        if t is int and not INT64_MIN <= v <= UINT64_MAX:
            raise ValueError(
                f"log(): value for key {key!r} is an int that does not fit in 64 bits; "
                f"log float(value) instead"
            )
        return v
    if t is str:
        problem = text_problem(v)
        if problem is not None:
            raise ValueError(f"log(): value for key {key!r} {problem}; log a shorter text")
        return v
    if isinstance(v, _RICH):
        return v._raw(key)
    if t is list or t is tuple:
        return _list_value(key, v)
    module = t.__module__
    if module == "numpy":
        return _numpy_value(key, v)
    if module.startswith("torch"):
        return _torch_value(key, v)
    if isinstance(v, (float, int, str)):  # subclasses such as IntEnum or np.float64
        return log_value(key, _base(v))
    raise TypeError(
        f"log(): value for key {key!r} is a {_describe(v)}; log a number, a bool, a str, "
        "a numpy array or torch tensor, a list of numbers, a trackd.Image, trackd.Histogram "
        "or trackd.Table, or a dict of them"
    )


_RICH = (Image, Histogram, Table)


def _list_value(key: str, v: list[Any] | tuple[Any, ...]) -> Any:
    """A list of images as one ``images`` value; a list of numbers as it is."""
    if v and all(isinstance(x, Image) for x in v):
        return {media.TYPE: media.IMAGES, "items": [x._raw(key) for x in v]}
    if any(isinstance(x, Image) for x in v):
        kinds = sorted({type(x).__name__ for x in v})
        raise TypeError(
            f"log(): value for key {key!r} is a list of {' and '.join(kinds)}; a list of "
            "images holds only trackd.Image: log the other values under their own keys"
        )
    if not all(isinstance(x, (int, float)) or _numpy_scalar(x) for x in v):
        raise TypeError(
            f"log(): value for key {key!r} is a {_describe(v)}; log a number, a list "
            "of numbers, a numpy array, or a list of trackd.Image"
        )
    return number_list(key, list(v))


def _numpy_scalar(x: Any) -> bool:
    return type(x).__module__ == "numpy" and getattr(x, "ndim", 1) == 0


def summary_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` for the summary: each raw media value (pixels, file bytes) replaced by a small
    description of it, so the summary never holds a second reference to the pixels."""
    return {k: summary_stub(v) if media.is_raw(v) else v for k, v in row.items()}


def summary_stub(value: dict[str, Any]) -> dict[str, Any]:
    """A raw media value without its bytes: what it is and its size."""
    kind = value[media.TYPE]
    if kind == media.IMAGES:
        return {media.TYPE: kind, "count": len(value["items"])}
    if kind == media.TABLE:
        return {media.TYPE: kind, "columns": value["columns"], "rows": len(value["data"])}
    if "shape" in value:
        h, w = value["shape"][:2]
    else:
        h, w = value["height"], value["width"]
    stub = {media.TYPE: kind, "width": w, "height": h}
    if value.get("caption") is not None:
        stub["caption"] = value["caption"]
    return stub


def _base(v: Any) -> Any:
    for base in (bool, int, float, str):
        if isinstance(v, base):
            return base(v)
    return v


def _numpy_value(key: str, v: Any) -> Any:
    if getattr(v, "ndim", 1) == 0:
        return log_value(key, v.item())
    if type(v).__name__ != "ndarray":
        raise TypeError(f"log(): value for key {key!r} is a numpy {type(v).__name__}; log a number")
    value = array_value(key, v)
    return log_value(key, v.reshape(-1)[0].item()) if value is None else value


def _torch_value(key: str, v: Any) -> Any:
    numel = getattr(v, "numel", None)
    if numel is None or not hasattr(v, "detach"):
        raise TypeError(
            f"log(): value for key {key!r} is a torch {type(v).__name__}; log a tensor or a number"
        )
    if numel() == 1:
        return log_value(key, v.detach().cpu().item())
    return tensor_value(key, v)


def _describe(v: Any) -> str:
    """'list of str', 'set of int', 'Foo' - the type as a user would say it."""
    name = type(v).__name__
    if isinstance(v, (list, tuple, set, frozenset)) and v:
        kinds = sorted({type(x).__name__ for x in v})
        return f"{name} of {' and '.join(kinds)}"
    return name


def plain(value: Any, where: str = "value", depth: int = 0) -> Any:
    """A config or summary value as data every process can store: None, bool, int64, float,
    str, and lists and str-keyed dicts of those, at most ``MAX_DEPTH`` deep. numpy and torch
    values become Python ones; other objects become their ``str()``. Anything that still
    cannot be stored (an int outside int64, a str over 1 MiB or holding NUL, deeper nesting)
    raises a ``ValueError`` naming ``where`` the problem is."""
    t = type(value)
    if value is None or t is bool or t is float:
        return value
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{where} is an int outside int64; pass float(value) or str(value)")
        return value
    if t is str:
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"{where} {problem}")
        return value
    if depth >= MAX_DEPTH and isinstance(value, (Mapping, list, tuple, set, frozenset)):
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep; flatten it")
    if isinstance(value, Mapping):
        return {
            check_key(where, str(k)): plain(v, f"{where}[{k!r}]", depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    module = t.__module__
    if module == "numpy" or module.startswith("torch"):
        if getattr(value, "ndim", 0) == 0 or getattr(value, "numel", lambda: 2)() == 1:
            return plain(value.item(), where, depth)
        return plain(value.tolist(), where, depth)
    if isinstance(value, (bool, int, float, str)):
        return plain(_base(value), where, depth)
    return plain(str(value), where, depth)
