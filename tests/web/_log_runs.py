"""Runs for the browser tests, logged for real: ``trackd.init/log/finish`` through the daemon.

Run as a script (a fresh process per batch, so the tests' own process never holds a run):
``python _log_runs.py project`` logs the project the tests look at; ``python _log_runs.py
live RELEASE_FILE`` logs a step every 0.1 s until RELEASE_FILE exists, then finishes;
``python _log_runs.py long STEPS`` logs one run of STEPS steps with one spike;
``python _log_runs.py secret`` logs one run (with the caller's key: another user's);
``python _log_runs.py many RUNS KEYS STEPS`` logs RUNS runs of KEYS metrics each (project
"many"); ``python _log_runs.py table RUNS`` logs RUNS short runs (project "table").
Each run's id is its name, so tests can name runs.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import trackd

# name: (config, tags, group, steps)
PROJECT = {
    "alpha": ({"lr": 0.1, "batch": 32, "opt": "sgd"}, ["baseline"], "g1", 50),
    "beta": ({"lr": 0.01, "batch": 64, "opt": "adam"}, ["exp"], "g1", 80),
    "gamma": ({"lr": 0.001, "batch": 64, "opt": "adam"}, ["baseline", "exp"], "g2", 120),
}
NAN_STEP = 40  # beta's train/loss is NaN here: a marker on the chart, not a gap


def log_project() -> None:
    for name, (config, tags, group, steps) in PROJECT.items():
        run = trackd.init(project="vision", id=name, name=name, config=config, tags=tags, group=group, job_type="train")
        for step in range(steps):
            loss = math.nan if name == "beta" and step == NAN_STEP else 1.0 / (step + 1)
            trackd.log({"train/loss": loss, "val/acc": step / steps})
        run.notes = f"notes of {name}"
        trackd.finish()
    try:
        with trackd.init(project="vision", id="delta", name="delta", config={"lr": 0.5}, tags=["exp"]):
            trackd.log({"train/loss": 3.0})
            raise RuntimeError("a failed run")
    except RuntimeError:
        pass


def log_live(release: Path) -> None:
    trackd.init(project="vision", id="live", name="live", config={"lr": 0.2})
    step = 0
    while not release.exists() or step < 20:
        trackd.log({"train/loss": 1.0 / (step + 1)})
        step += 1
        time.sleep(0.1)
    trackd.log({"train/loss": 0.0})
    trackd.finish()


def log_long(steps: int, project: str = "long") -> None:
    trackd.init(project=project, id=f"long{steps}", name=f"long{steps}")
    spike = steps * 2 // 3
    for step in range(steps):
        trackd.log({"loss": 100.0 if step == spike else 1.0 + math.sin(step / 50) * 0.1})
    trackd.finish()


def log_many(runs: int, keys: int, steps: int) -> None:
    for r in range(runs):
        trackd.init(project="many", id=f"many{r}", name=f"many{r}", config={"lr": 10.0 ** -(r % 5), "seed": r})
        for step in range(steps):
            trackd.log({f"m/k{k}": math.sin(step / 100 + k + r) for k in range(keys)})
        trackd.finish()


def log_table(runs: int) -> None:
    for r in range(runs):
        trackd.init(project="table", id=f"t{r}", name=f"t{r}", config={"lr": 1.0 / (r + 1), "seed": r})
        trackd.log({"loss": 1.0 / (r + 1)})
        trackd.finish()


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "project":
        log_project()
    elif kind == "live":
        log_live(Path(argv[1]))
    elif kind == "long":
        log_long(int(argv[1]))
    elif kind == "many":
        log_many(int(argv[1]), int(argv[2]), int(argv[3]))
    elif kind == "table":
        log_table(int(argv[1]))
    elif kind == "secret":
        trackd.init(project="secret", id="hidden", name="hidden", config={"lr": 9.0})
        trackd.log({"train/loss": 1.0})
        trackd.finish()
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
