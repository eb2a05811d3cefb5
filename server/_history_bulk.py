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
from ._downsample import Series, values_of
from ._history import MAX_KEYS, MAX_SAMPLES, check_key, render_values
from ._record_rules import INT64_MAX, INT64_MIN
from ._series_read import read_series
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


def _key_ids(conn: Connection, run_pks: list[int], keys: list[str]) -> dict[tuple[int, str], int]:
    """The key ids of ``keys`` in every run of ``run_pks``, by (run, key): one query."""
    k = s.run_keys.c
    rows = conn.execute(select(k.run_pk, k.key, k.id).where(k.run_pk.in_(run_pks), k.key.in_(keys)))
    return {(int(run_pk), key): int(key_id) for run_pk, key, key_id in rows}


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


@dataclass(frozen=True, slots=True)
class _Entry:
    run: str
    key: str
    last_step: int | None
    series: Series
    xs: list[Any] | None  # the x key's values, when x is a key


def read_bulk(
    conn: Connection, project_id: int, query: BulkQuery, binary: bool = False
) -> dict[str, Any]:
    """The answer: ``{"x", "samples", "series": [...], "not_found": [run ids]}``; with
    ``binary``, each series' arrays as little-endian bytes (see :func:`_columns`). Every
    series is read at once (:mod:`._series_read`): a few queries, whatever the count."""
    runs = _run_rows(conn, project_id, query.runs)
    by_key = query.x not in ("step", "time")
    found = [run_id for run_id in query.runs if run_id in runs]
    wanted = query.keys + ([query.x] if by_key else [])
    ids = _key_ids(conn, [runs[run_id][0] for run_id in found], wanted) if found else {}
    pairs = [(r, k) for r in found for k in query.keys if (runs[r][0], k) in ids]
    series = read_series(
        conn,
        [(runs[r][0], ids[(runs[r][0], k)]) for r, k in pairs],
        query.lo,
        query.hi,
        query.samples,
    )
    x_points: dict[str, b.Points] = {}
    out: list[dict[str, Any]] = []
    for (run_id, key), points in zip(pairs, series, strict=True):
        run_pk, last_step = runs[run_id]
        entry = _Entry(run_id, key, last_step, Series.of(points), None)
        if by_key:
            if run_id not in x_points:
                x_points[run_id] = _x_points(conn, run_pk, ids.get((run_pk, query.x)), query)
            picked, xs = _with_x(entry.series, x_points[run_id])
            entry = _Entry(run_id, key, last_step, picked, xs)
        out.append(_columns(entry) if binary else _lists(entry))
    missing = [run_id for run_id in query.runs if run_id not in runs]
    answer = {"x": query.x, "samples": query.samples, "series": out, "not_found": missing}
    return dict(answer, format="columns") if binary else answer


def _lists(entry: _Entry) -> dict[str, Any]:
    series = entry.series
    doc: dict[str, Any] = {"run": entry.run, "key": entry.key, "last_step": entry.last_step}
    if entry.xs is not None:
        doc["x"] = render_values(entry.xs)
    doc.update(step=series.steps, time=series.times, value=render_values(series.values))
    return doc


def _x_points(conn: Connection, run_pk: int, key_id: int | None, query: BulkQuery) -> b.Points:
    if key_id is None:
        return b.empty()
    return store.points(conn, run_pk, key_id, query.lo, query.hi)


def _columns(entry: _Entry) -> dict[str, Any]:
    """A series with its arrays as little-endian binary, for the UI.

    ``step`` is int64; ``time``, ``value`` and ``x`` are float64. A value float64 cannot
    carry exactly (a str, bool, None, map, or an int beyond 2**53) is NaN in the array and
    given in ``exact``, a map from its position to the value (``x_exact`` for ``x``).
    """
    series = entry.series
    doc: dict[str, Any] = {"run": entry.run, "key": entry.key, "last_step": entry.last_step}
    points = series.points
    if points is not None:  # straight from the arrays read
        doc["step"] = points.steps.astype("<i8", copy=False).tobytes()
        doc["time"] = points.times.astype("<f8", copy=False).tobytes()
        doc["value"], doc["exact"] = _point_floats(points)
    else:
        doc["step"] = np.array(series.steps, dtype="<i8").tobytes()
        doc["time"] = np.array(series.times, dtype="<f8").tobytes()
        doc["value"], doc["exact"] = _floats(render_values(series.values))
    if entry.xs is not None:
        doc["x"], doc["x_exact"] = _floats(render_values(entry.xs))
    return doc


def _point_floats(points: b.Points) -> tuple[bytes, dict[int, Any]]:
    """Values as float64 bytes, and the exact value of each point float64 cannot carry."""
    if points.kinds is None:
        return points.values.astype("<f8", copy=False).tobytes(), {}
    floats = points.values.astype("<f8", copy=True)
    odd = np.flatnonzero((points.kinds != b.FLOAT) & (points.kinds != b.INT))
    floats[odd] = np.nan
    exact = {
        int(i): v
        for i, v in zip(
            odd.tolist(), render_values([points.value(i) for i in odd.tolist()]), strict=True
        )
    }
    return floats.tobytes(), exact


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
