"""Per-call latency figures the latency benchmarks print, computed one way."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


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


def run_section(script: str, name: str, count: int) -> Any:
    """``script --only name --calls count`` in a fresh interpreter (so no contender inherits
    another's threads or hooks), and the JSON its last line prints, or the error it gave."""
    proc = subprocess.run(
        [sys.executable, script, "--only", name, "--calls", str(count)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-3:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])
