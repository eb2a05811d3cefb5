"""Reading a run's history: whole rows by step, or per-key series downsampled for charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from . import _schema as s
from ._downsample import select_points
from ._record_rules import INT64_MAX, INT64_MIN, MAX_KEY_LEN
from ._values import decode_value
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
        if len(name) > MAX_KEY_LEN or "\x00" in name:
            raise BadRequest(
                f"keys holds {name[:40]!r}, which no key can be: keys have at most "
                f"{MAX_KEY_LEN} characters and no NUL"
            )
    return names


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


def _select(run_pk: int, query: HistoryQuery, by_key: bool) -> Any:
    h, k = s.history, s.run_keys
    stmt = (
        select(k.c.key, h.c.step, h.c.time, h.c.kind, h.c.num, h.c.ival, h.c.text)
        .join(k, k.c.id == h.c.key_id)
        .where(h.c.run_pk == run_pk)
    )
    if query.keys is not None:
        stmt = stmt.where(k.c.key.in_(query.keys))
    if query.min_step is not None:
        stmt = stmt.where(h.c.step >= query.min_step)
    if query.max_step is not None:
        stmt = stmt.where(h.c.step <= query.max_step)
    return stmt.order_by(h.c.key_id, h.c.step) if by_key else stmt.order_by(h.c.step, h.c.key_id)


MAX_ROW_VALUES = 1_000_000  # one unsampled answer; more is paged by step (scan_history)


def rows(conn: Connection, run_pk: int, query: HistoryQuery) -> list[dict[str, Any]]:
    """Rows ``{"_step", "_timestamp", key: value, ...}`` ordered by step, at most
    ``MAX_ROW_VALUES`` values (a :class:`BadRequest` says how to ask for more)."""
    out: list[dict[str, Any]] = []
    row: dict[str, Any] = {}
    stmt = _select(run_pk, query, False).limit(MAX_ROW_VALUES + 1)
    for n, (key, step, t, kind, num, ival, text) in enumerate(conn.execute(stmt)):
        if n == MAX_ROW_VALUES:
            raise BadRequest(
                f"this history holds more than {MAX_ROW_VALUES} values in the range asked for; "
                "ask for samples=N (downsampled), or page with min_step/max_step "
                "(trackd.Api().run(...).scan_history() does)"
            )
        if not out or row["_step"] != step:
            row = {"_step": step, "_timestamp": t}
            out.append(row)
        row[key] = decode_value(kind, num, ival, text)
    return out


def sampled(conn: Connection, run_pk: int, query: HistoryQuery) -> dict[str, Any]:
    """``{"keys": {key: {"step": [...], "value": [...], "time": [...]}}}``, downsampled."""
    series: dict[str, tuple[list[int], list[Any], list[float]]] = {}
    for key, step, t, kind, num, ival, text in conn.execute(_select(run_pk, query, True)):
        steps, values, times = series.setdefault(key, ([], [], []))
        steps.append(step)
        values.append(decode_value(kind, num, ival, text))
        times.append(t)
    out: dict[str, Any] = {}
    for key, (steps, values, times) in series.items():
        keep = select_points(steps, values, query.samples or 0)
        out[key] = {
            "step": [steps[i] for i in keep],
            "value": [values[i] for i in keep],
            "time": [times[i] for i in keep],
        }
    return {"keys": out}
