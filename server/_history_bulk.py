"""The bulk history read: runs x keys x step range x samples in one request, for charts.

Each (run, key) series is downsampled on its own (:mod:`._downsample`), so the cost grows
with the series and points asked for, not with the points logged. ``x`` picks the x axis:
``"step"`` (default), ``"time"`` (each point's wall time, always in the answer), or another
key (``define_metric(step_metric=...)``): the point's x is that key's value at the same step,
and a point whose step has no such value is left out. ``after_step`` reads a live run
incrementally: only points with a greater step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from . import _blocks as b
from . import _history_store as store
from . import _schema as s
from ._downsample import Series, read_keys, values_of
from ._history import MAX_KEYS, MAX_SAMPLES, check_key, render_values
from ._record_rules import INT64_MAX, INT64_MIN
from .errors import BadRequest

MAX_RUNS = 1000
MAX_POINTS = 10_000_000  # series x samples in one answer
DEFAULT_SAMPLES = 1000


@dataclass(frozen=True, slots=True)
class BulkQuery:
    runs: list[str]
    keys: list[str]
    lo: int
    hi: int
    samples: int
    x: str

    @classmethod
    def from_body(
        cls,
        runs: list[str],
        keys: list[str],
        min_step: int | None,
        max_step: int | None,
        after_step: int | None,
        samples: int | None,
        x: str,
    ) -> BulkQuery:
        """The query for the bulk route's body, or :class:`BadRequest` (400) saying what to fix."""
        if not runs or len(runs) > MAX_RUNS:
            raise BadRequest(f"runs names {len(runs)} runs; ask for 1 to {MAX_RUNS} runs at once")
        if not keys or len(keys) > MAX_KEYS:
            raise BadRequest(f"keys names {len(keys)} keys; ask for 1 to {MAX_KEYS} keys at once")
        names = [check_key(key) for key in dict.fromkeys(keys)]
        samples = DEFAULT_SAMPLES if samples is None else samples
        if not 2 <= samples <= MAX_SAMPLES:
            raise BadRequest(f"samples={samples} is out of range; ask for 2 to {MAX_SAMPLES}")
        if len(runs) * len(names) * samples > MAX_POINTS:
            raise BadRequest(
                f"{len(runs)} runs x {len(names)} keys x samples={samples} is over "
                f"{MAX_POINTS} points; ask for fewer samples or fewer series per request"
            )
        lo = INT64_MIN if min_step is None else min_step
        if after_step is not None:
            lo = max(lo, after_step + 1) if after_step < INT64_MAX else INT64_MAX
        hi = INT64_MAX if max_step is None else max_step
        for name, value in (("min_step", lo), ("max_step", hi)):
            if not INT64_MIN <= value <= INT64_MAX:
                raise BadRequest(f"{name}={value} is outside int64")
        x = x or "step"
        if x not in ("step", "time"):
            check_key(x, "x")
        return cls(list(dict.fromkeys(runs)), names, lo, hi, samples, x)


def _run_rows(conn: Connection, project_id: int, run_ids: list[str]) -> dict[str, Any]:
    r = s.runs.c
    rows = conn.execute(
        select(r.run_id, r.id, r.last_step).where(r.project_id == project_id, r.run_id.in_(run_ids))
    )
    return {run_id: (int(pk), last) for run_id, pk, last in rows}


def _key_ids(conn: Connection, run_pk: int, keys: list[str]) -> dict[str, int]:
    k = s.run_keys.c
    rows = conn.execute(select(k.key, k.id).where(k.run_pk == run_pk, k.key.in_(keys)))
    return {key: int(key_id) for key, key_id in rows}


def _with_x(series: Series, x_points: b.Points) -> tuple[Series, list[Any]]:
    """``series`` cut to the steps where the x key has a value, and those values."""
    if not series.steps or not len(x_points):
        return Series([], [], []), []
    steps = np.array(series.steps, dtype=np.int64)
    at = np.searchsorted(x_points.steps, steps).clip(0, len(x_points) - 1)
    found = x_points.steps[at] == steps
    keep = np.flatnonzero(found).tolist()
    xs = values_of(x_points.take(at[found]))
    picked = Series(
        [series.steps[i] for i in keep],
        [series.times[i] for i in keep],
        [series.values[i] for i in keep],
    )
    return picked, xs


def read_bulk(conn: Connection, project_id: int, query: BulkQuery) -> dict[str, Any]:
    """The answer: ``{"x", "samples", "series": [...], "not_found": [run ids]}``."""
    runs = _run_rows(conn, project_id, query.runs)
    by_key = query.x not in ("step", "time")
    out: list[dict[str, Any]] = []
    for run_id in query.runs:
        if run_id not in runs:
            continue
        run_pk, last_step = runs[run_id]
        wanted = query.keys + ([query.x] if by_key else [])
        ids = _key_ids(conn, run_pk, wanted)
        x_points = None
        present = [key for key in query.keys if key in ids]
        read = read_keys(conn, run_pk, [ids[k] for k in present], query.lo, query.hi, query.samples)
        for key in present:
            series = read[ids[key]]
            doc: dict[str, Any] = {"run": run_id, "key": key, "last_step": last_step}
            if by_key:
                if x_points is None:
                    x_points = _x_points(conn, run_pk, ids.get(query.x), query)
                series, xs = _with_x(series, x_points)
                doc["x"] = render_values(xs)
            doc.update(step=series.steps, time=series.times, value=render_values(series.values))
            out.append(doc)
    missing = [run_id for run_id in query.runs if run_id not in runs]
    return {"x": query.x, "samples": query.samples, "series": out, "not_found": missing}


def _x_points(conn: Connection, run_pk: int, key_id: int | None, query: BulkQuery) -> b.Points:
    if key_id is None:
        return b.empty()
    return store.points(conn, run_pk, key_id, query.lo, query.hi)


def columnar(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with each series' arrays as little-endian binary, for the UI.

    ``step`` is int64; ``time``, ``value`` and ``x`` are float64. A value float64 cannot
    carry exactly (a str, bool, None, map, or an int beyond 2**53) is NaN in the array and
    given in ``exact``, a map from its position to the value (``x_exact`` for ``x``).
    """
    series = []
    for doc in answer["series"]:
        packed = dict(doc)
        packed["step"] = np.array(doc["step"], dtype="<i8").tobytes()
        packed["time"] = np.array(doc["time"], dtype="<f8").tobytes()
        packed["value"], packed["exact"] = _floats(doc["value"])
        if "x" in doc:
            packed["x"], packed["x_exact"] = _floats(doc["x"])
        series.append(packed)
    return dict(answer, series=series, format="columns")


def _floats(values: list[Any]) -> tuple[bytes, dict[int, Any]]:
    exact: dict[int, Any] = {}
    if all(type(v) is float for v in values):
        return np.array(values, dtype="<f8").tobytes(), exact
    floats = np.full(len(values), np.nan, dtype="<f8")
    for i, v in enumerate(values):
        if type(v) is float or (type(v) is int and -(2**53) <= v <= 2**53):
            floats[i] = v
        else:
            exact[i] = v
    return floats.tobytes(), exact
