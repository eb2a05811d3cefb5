"""Reading a run's history: whole rows by step, or per-key series downsampled for charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from . import _schema as s
from ._downsample import select_points
from ._values import decode_value
from .errors import BadRequest


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
        if samples is not None and samples < 2:
            raise BadRequest(f"samples={samples} is too small; ask for at least 2 points")
        names = [k for k in keys.split(",") if k] if keys else None
        return cls(names, min_step, max_step, samples)


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


def rows(conn: Connection, run_pk: int, query: HistoryQuery) -> list[dict[str, Any]]:
    """Rows ``{"_step", "_timestamp", key: value, ...}`` ordered by step."""
    out: list[dict[str, Any]] = []
    row: dict[str, Any] = {}
    for key, step, t, kind, num, ival, text in conn.execute(_select(run_pk, query, False)):
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
