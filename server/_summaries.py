"""A run's :class:`trackd._summary.SummaryState`, saved between ingest batches.

The server folds every history row into the same ``SummaryState`` the client uses, so both
agree on the summary; the state (metric definitions, last values, explicit sets and the
running aggregates) is stored as msgpack in ``runs.summary_state``.
"""

from __future__ import annotations

from typing import Any

import msgpack
from trackd._summary import GOALS, MetricDef, SummaryState, _Agg, parse_summary_modes

from .errors import InvalidRecord

_FORMAT = 1


def dump(state: SummaryState) -> bytes:
    aggs = {
        key: [a.first, a.last, a.min, a.max, a.total, a.count, a.seen]
        for key, a in state._aggs.items()
    }
    metrics = [[m.name, m.step_metric, list(m.summary), m.goal] for m in state.metrics]
    doc = {
        "v": _FORMAT,
        "metrics": metrics,
        "last": state.last,
        "explicit": state.explicit,
        "aggs": aggs,
    }
    return msgpack.packb(doc, use_bin_type=True)


def load(blob: bytes | None) -> SummaryState:
    state = SummaryState()
    if not blob:
        return state
    doc: dict[str, Any] = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    for name, step_metric, summary, goal in doc["metrics"]:
        state.metrics.append(MetricDef(name, step_metric, tuple(summary), goal))
    state.last.update(doc["last"])
    state.explicit.update(doc["explicit"])
    for key, fields in doc["aggs"].items():
        state._aggs[key] = _Agg(*fields)
    return state


def metric_def(name: Any, step_metric: Any, summary: Any, goal: Any) -> MetricDef:
    """A ``Metric`` record's definition, or :class:`InvalidRecord` naming what is wrong."""
    if type(name) is not str or not name:
        raise InvalidRecord(f"Metric record: name {name!r} must be a non-empty str")
    if goal is not None and goal not in GOALS:
        raise InvalidRecord(
            f"Metric record for {name!r}: goal {goal!r} is not one of {sorted(GOALS)}"
        )
    if summary is not None and type(summary) is not str:
        raise InvalidRecord(f"Metric record for {name!r}: summary must be a str or None")
    try:
        modes = parse_summary_modes(summary)
    except ValueError as exc:
        raise InvalidRecord(f"Metric record for {name!r}: {exc}") from exc
    if step_metric is not None and type(step_metric) is not str:
        raise InvalidRecord(f"Metric record for {name!r}: step_metric must be a str or None")
    return MetricDef(name, step_metric, modes, goal)
