"""Reading a run's history: whole rows by step, or per-key series downsampled for charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from . import _history_store as store
from . import _schema as s
from ._downsample import read, values_of
from ._record_rules import INT64_MAX, INT64_MIN, MAX_KEY_LEN, SYSTEM_PREFIX
from ._values import render
from .errors import BadRequest

MAX_SAMPLES = 100_000
MAX_KEYS = 1000


def _step_param(name: str, value: int | None) -> int | None:
    if value is not None and not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(f"{name}={value} is outside int64; steps are from -2**63 to 2**63-1")
    return value


def _keys_param(keys: str | None) -> list[str] | None:
    if not keys:
        return None
    names = [k for k in keys.split(",") if k]
    if len(names) > MAX_KEYS:
        raise BadRequest(f"keys names {len(names)} keys; ask for at most {MAX_KEYS} keys at once")
    for name in names:
        check_key(name)
    return names


def check_key(name: str, where: str = "keys") -> str:
    """``name`` if some key could have it, else :class:`BadRequest`."""
    if len(name) > MAX_KEY_LEN or "\x00" in name or not name:
        raise BadRequest(
            f"{where} holds {name[:40]!r}, which no key can be: keys have 1 to "
            f"{MAX_KEY_LEN} characters and no NUL"
        )
    return name


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    keys: list[str] | None = None
    min_step: int | None = None
    max_step: int | None = None
    samples: int | None = None

    @classmethod
    def from_params(
        cls, keys: str | None, min_step: int | None, max_step: int | None, samples: int | None
    ) -> HistoryQuery:
        """The query for the history route's parameters, or :class:`BadRequest` (400)."""
        if samples is not None and not 2 <= samples <= MAX_SAMPLES:
            raise BadRequest(
                f"samples={samples} is out of range; ask for 2 to {MAX_SAMPLES} points per key"
            )
        return cls(
            _keys_param(keys),
            _step_param("min_step", min_step),
            _step_param("max_step", max_step),
            samples,
        )


def run_keys(conn: Connection, run_pk: int, keys: list[str] | None) -> list[tuple[str, int]]:
    """``(key, key_id)`` of the run's keys (those named in ``keys``), in the order first logged.
    Without ``keys``: the keys the script logged, not the system metrics (``system/...``, on
    an axis of their own, see :mod:`._system_stats`)."""
    k = s.run_keys.c
    stmt = select(k.key, k.id).where(k.run_pk == run_pk)
    if keys is not None:
        stmt = stmt.where(k.key.in_(keys))
    else:
        stmt = stmt.where(func.substr(k.key, 1, len(SYSTEM_PREFIX)) != SYSTEM_PREFIX)
    return [(key, int(key_id)) for key, key_id in conn.execute(stmt.order_by(k.id))]


def _range(query: HistoryQuery) -> tuple[int, int]:
    lo = INT64_MIN if query.min_step is None else query.min_step
    return lo, INT64_MAX if query.max_step is None else query.max_step


MAX_ROW_VALUES = 1_000_000  # one unsampled answer; more is paged by step (scan_history)


def rows(conn: Connection, run_pk: int, query: HistoryQuery) -> list[dict[str, Any]]:
    """Rows ``{"_step", "_timestamp", key: value, ...}`` ordered by step, at most
    ``MAX_ROW_VALUES`` values (a :class:`BadRequest` says how to ask for more)."""
    lo, hi = _range(query)
    by_step: dict[int, dict[str, Any]] = {}
    count = 0
    for key, key_id in run_keys(conn, run_pk, query.keys):
        points = store.points(conn, run_pk, key_id, lo, hi)
        count += len(points)
        if count > MAX_ROW_VALUES:
            raise BadRequest(
                f"this history holds more than {MAX_ROW_VALUES} values in the range asked for; "
                "ask for samples=N (downsampled), or page with min_step/max_step "
                "(trackd.Api().run(...).scan_history() does)"
            )
        values = render_values(values_of(points))
        for step, t, value in zip(
            points.steps.tolist(), points.times.tolist(), values, strict=True
        ):
            row = by_step.get(step)
            if row is None:
                row = by_step[step] = {"_step": step, "_timestamp": t}
            row[key] = value
    return [by_step[step] for step in sorted(by_step)]


def sampled(conn: Connection, run_pk: int, query: HistoryQuery) -> dict[str, Any]:
    """``{"keys": {key: {"step": [...], "value": [...], "time": [...]}}}``, downsampled."""
    lo, hi = _range(query)
    out: dict[str, Any] = {}
    for key, key_id in run_keys(conn, run_pk, query.keys):
        series = read(conn, run_pk, key_id, lo, hi, query.samples or 0)
        if series.steps:
            out[key] = {
                "step": series.steps,
                "value": render_values(series.values),
                "time": series.times,
            }
    return {"keys": out}


def render_values(values: list[Any]) -> list[Any]:
    """Values as an answer carries them (maps and lists rendered, see :func:`render`)."""
    if not {dict, list} & set(map(type, values)):
        return values
    return [render(v) if isinstance(v, (dict, list)) else v for v in values]
