"""``trackd import wandb`` of a long wandb offline run: how long the import takes, and
whether the server then holds exactly the rows wandb logged, once, after a second import.

A wandb offline run of ``--steps`` steps (3 scalars a step, NaN and inf among them) is made
with the wandb package in a child process; it is imported twice with the real CLI into a
fresh real server (SQLite), and the server's history is read back and compared row by row.

Usage: ``python bench/import_wandb.py [--steps 100000]`` (needs ``pip install -e '.[dev]'``);
prints JSON. Target (issue 12): 100,000 steps, the rows equal, one copy after two imports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._support.server import running_server  # noqa: E402 - the same launcher tests use

MAKE_RUN = textwrap.dedent(
    """
    import sys, wandb
    run = wandb.init(project="bench-import", config={"steps": int(sys.argv[1])})
    for i in range(int(sys.argv[1])):
        run.log({"loss": 1.0 / (i + 1), "i": i, "weird": [float("nan"), float("inf"), 0.5][i % 3]})
    run.finish()
    print(run.id)
    """
)


def _expected(i: int) -> dict[str, Any]:
    return {"loss": 1.0 / (i + 1), "i": i, "weird": [math.nan, math.inf, 0.5][i % 3]}


def _same(a: Any, b: Any) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    steps = parser.parse_args().steps
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp), WANDB_SILENT="true")
    began = time.perf_counter()
    made = subprocess.run(
        [sys.executable, "-c", MAKE_RUN, str(steps)], env=env, cwd=tmp, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    run_id = made.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = {"steps": steps, "wandb_log_s": round(time.perf_counter() - began, 2)}
    with running_server(tmp / "server") as server:
        env = dict(
            os.environ, TRACKD_BASE_URL=server.url, TRACKD_API_KEY=server.admin_key,
            TRACKD_DIR=str(tmp / "runs"), TRACKD_DAEMON_DIR=tempfile.mkdtemp(prefix="trkd-"),
            TRACKD_CONFIG_DIR=str(tmp / "config"), TRACKD_SILENT="1",
        )  # fmt: skip
        for attempt in ("first", "second"):
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "trackd", "import", "wandb", str(tmp / "wandb")],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            result[f"import_{attempt}_s"] = round(time.perf_counter() - began, 2)
        headers = {"Authorization": f"Bearer {server.admin_key}", "Accept": "application/msgpack"}
        url = f"{server.url}/api/v1/runs/admin/bench-import/{run_id}/history"
        rows = msgpack.unpackb(httpx.get(url, headers=headers, timeout=300).content)
    result["rows_on_server"] = len(rows)
    result["rows_equal"] = [r["_step"] for r in rows] == list(range(steps)) and all(
        all(_same(r[k], v) for k, v in _expected(r["_step"]).items()) for r in rows
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
