"""A run's summary, derived from its history the same way wherever it is computed.

The training process, the offline reader and the server all fold history rows into a
:class:`SummaryState`, so they agree on what a run's summary is:

- a key with no metric definition summarises to its last value;
- ``define_metric(name, summary="min,max")`` (globs such as ``"val/*"`` allowed) makes the
  summary of a matching key a dict of the requested aggregates: ``min``, ``max``, ``mean``,
  ``first``, ``last``, ``best`` (min or max by ``goal``); ``"none"`` leaves the key out;
- a value set explicitly (``run.summary["k"] = v``) wins over anything derived, until the
  next explicit set; setting ``None`` removes an explicit value.

The state (metric definitions, last values, explicit sets, running aggregates) is saved
between ingest batches with :func:`dump_state` / :func:`load_state`, msgpack carrying
``"v": STATE_VERSION``.

Only finite numbers take part in ``min``/``max``/``mean``/``best``; NaN and inf still become
the ``last`` value, so a summary shows a loss that went NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import msgpack

SUMMARY_MODES = frozenset({"min", "max", "mean", "first", "last", "best", "none"})
GOALS = frozenset({"minimize", "maximize"})
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    step_metric: str | None = None
    summary: tuple[str, ...] = ()
    goal: str | None = None

    def matches(self, key: str) -> bool:
        if "*" in self.name or "?" in self.name or "[" in self.name:
            return fnmatchcase(key, self.name)
        return key == self.name


def parse_summary_modes(summary: str | None) -> tuple[str, ...]:
    """``"min,max"`` -> ``("min", "max")``; raises ``ValueError`` naming a bad mode."""
    if summary is None:
        return ()
    modes = tuple(m.strip() for m in summary.split(",") if m.strip())
    for mode in modes:
        if mode not in SUMMARY_MODES:
            allowed = ", ".join(sorted(SUMMARY_MODES))
            raise ValueError(f"summary mode {mode!r} is not one of {allowed}")
    return modes


def _is_number(v: Any) -> bool:
    return (type(v) is float or type(v) is int) and math.isfinite(v)


@dataclass(slots=True)
class _Agg:
    first: Any = None
    last: Any = None
    min: float | None = None
    max: float | None = None
    total: float = 0.0
    count: int = 0
    seen: bool = False

    def add(self, v: Any) -> None:
        if not self.seen:
            self.first = v
            self.seen = True
        self.last = v
        if _is_number(v):
            self.min = v if self.min is None or v < self.min else self.min
            self.max = v if self.max is None or v > self.max else self.max
            self.total += v
            self.count += 1


@dataclass(slots=True)
class SummaryState:
    """Incremental summary of one run. Feed it rows; read :meth:`to_dict`."""

    metrics: list[MetricDef] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    explicit: dict[str, Any] = field(default_factory=dict)
    _aggs: dict[str, _Agg] = field(default_factory=dict)
    _defs: dict[str, MetricDef | None] = field(default_factory=dict)

    def define(self, metric: MetricDef) -> None:
        self.metrics.append(metric)
        self._defs.clear()

    def _def_for(self, key: str) -> MetricDef | None:
        try:
            return self._defs[key]
        except KeyError:
            found = None
            for m in reversed(self.metrics):
                if m.summary and m.matches(key):
                    found = m
                    break
            self._defs[key] = found
            return found

    def observe(self, row: dict[str, Any]) -> None:
        """Fold one history row (flat key -> value) in."""
        self.last.update(row)
        if not self.metrics:
            return
        for key, value in row.items():
            if self._def_for(key) is not None:
                agg = self._aggs.get(key)
                if agg is None:
                    agg = self._aggs[key] = _Agg()
                agg.add(value)

    def wants_every_value(self, key: str) -> bool:
        """Whether the summary of ``key`` depends on more than its last value."""
        return bool(self.metrics) and self._def_for(key) is not None

    def observe_series(self, key: str, values: list[Any]) -> None:
        """Fold in one key's values, in row order: the same as :meth:`observe` of the rows
        holding them. Unless :meth:`wants_every_value`, the last value alone will do."""
        if not values:
            return
        self.last[key] = values[-1]
        if self.wants_every_value(key):
            agg = self._aggs.get(key)
            if agg is None:
                agg = self._aggs[key] = _Agg()
            for value in values:
                agg.add(value)

    def set_explicit(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            if value is None:
                self.explicit.pop(key, None)
            else:
                self.explicit[key] = value

    def _derived(self, key: str, value: Any) -> tuple[bool, Any]:
        metric = self._def_for(key)
        if metric is None:
            return True, value
        if "none" in metric.summary:
            return False, None
        agg = self._aggs.get(key)
        if agg is None:
            return True, value
        out: dict[str, Any] = {}
        for mode in metric.summary:
            if mode == "mean":
                if agg.count:
                    out["mean"] = agg.total / agg.count
            elif mode == "best":
                best = agg.max if metric.goal == "maximize" else agg.min
                if best is not None:
                    out["best"] = best
            elif mode in ("min", "max"):
                if getattr(agg, mode) is not None:
                    out[mode] = getattr(agg, mode)
            else:
                out[mode] = getattr(agg, mode)
        return True, out

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in self.last.items():
            keep, derived = self._derived(key, value)
            if keep:
                result[key] = derived
        result.update(self.explicit)
        return result


def dump_state(state: SummaryState) -> bytes:
    """``state`` as msgpack bytes, to be read back by :func:`load_state`."""
    aggs = {
        key: [a.first, a.last, a.min, a.max, a.total, a.count, a.seen]
        for key, a in state._aggs.items()
    }
    metrics = [[m.name, m.step_metric, list(m.summary), m.goal] for m in state.metrics]
    doc = {
        "v": STATE_VERSION,
        "metrics": metrics,
        "last": state.last,
        "explicit": state.explicit,
        "aggs": aggs,
    }
    return msgpack.packb(doc, use_bin_type=True)


def load_state(blob: bytes | None) -> SummaryState:
    """The state :func:`dump_state` saved (an empty one for ``None`` or empty bytes)."""
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
