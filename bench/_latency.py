"""Per-call latency figures the latency benchmarks print, computed one way."""

from __future__ import annotations


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50, p99, p99.9 and max in microseconds of per-call times given in nanoseconds."""
    ordered = sorted(samples_ns)
    calls = len(ordered)

    def pct(q: float) -> float:
        return ordered[min(calls - 1, int(q * calls))] / 1000

    return {
        "calls": calls,
        "p50_us": round(pct(0.50), 3),
        "p99_us": round(pct(0.99), 3),
        "p999_us": round(pct(0.999), 3),
        "max_us": round(ordered[-1] / 1000, 1),
    }
