"""Checking a ``Metric`` record before it joins a run's summary state.

The server folds every history row into the same :class:`trackd._wire.summary.SummaryState`
the client uses, so both agree on the summary; the state is saved between ingest batches
with :func:`trackd._wire.summary.dump_state` in ``runs.summary_state``.
"""

from __future__ import annotations

from typing import Any

from trackd._wire.summary import GOALS, MetricDef, parse_summary_modes

from .errors import InvalidRecord


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
