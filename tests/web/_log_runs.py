"""Runs for the browser tests, logged for real: ``trackd.init/log/finish`` through the daemon.

Run as a script (a fresh process per batch, so the tests' own process never holds a run):
``python _log_runs.py project`` logs the project the tests look at; ``python _log_runs.py
live RELEASE_FILE`` logs a step every 0.1 s until RELEASE_FILE exists, then finishes;
``python _log_runs.py long STEPS`` logs one run of STEPS steps with one spike;
``python _log_runs.py secret`` logs one run (with the caller's key: another user's);
``python _log_runs.py media`` logs run "pics" (project "media"): images with boxes and a
mask at steps 0-2, a table with image cells, and ``watch()``'s gradient histograms;
``python _log_runs.py many RUNS KEYS STEPS`` logs RUNS runs of KEYS metrics each (project
"many"); ``python _log_runs.py table RUNS`` logs RUNS short runs (project "table");
``python _log_runs.py team NAME LINES [RELEASE_FILE]`` logs run NAME in the team project
"lab/shared" printing LINES lines (every 7th to stderr) and a tqdm bar, an image at steps
0-2 (key "examples"), with system metrics
sampled every 0.2 s; with RELEASE_FILE it logs to "lab/live" and prints a line every 0.1 s
until the file exists.
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
        run = trackd.init(
            project="vision",
            id=name,
            name=name,
            config=config,
            tags=tags,
            group=group,
            job_type="train",
        )
        for step in range(steps):
            loss = math.nan if name == "beta" and step == NAN_STEP else 1.0 / (step + 1)
            trackd.log({"train/loss": loss, "val/acc": step / steps})
        run.notes = f"notes of {name}"
        trackd.finish()
    try:
        with trackd.init(
            project="vision", id="delta", name="delta", config={"lr": 0.5}, tags=["exp"]
        ):
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


MEDIA_SIZE = (48, 64)  # height, width of the images of log_media
MEDIA_STEPS = 3
WATCH_STEPS = 12
# the mask of log_media: class 1 ("cat") in the left half, 2 ("dog") in the bottom right quarter
CAT_PIXELS = 48 * 32
DOG_PIXELS = 24 * 32


def media_mask() -> object:
    import numpy as np

    height, width = MEDIA_SIZE
    mask = np.zeros(MEDIA_SIZE, dtype=np.uint8)
    mask[:, : width // 2] = 1
    mask[height // 2 :, width // 2 :] = 2
    return mask


def media_image(step: int) -> trackd.Image:
    """A gradient image (its colour changes with the step), two scored boxes and a mask."""
    import numpy as np

    height, width = MEDIA_SIZE
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 80 * step
    labels = {0: "background", 1: "cat", 2: "dog"}
    boxes = [
        {
            "position": {"minX": 0.05, "maxX": 0.45, "minY": 0.1, "maxY": 0.9},
            "class_id": 1,
            "scores": {"score": 0.9},
        },
        {
            "position": {"middle": [48, 36], "width": 24, "height": 16},
            "domain": "pixel",
            "class_id": 2,
            "box_caption": "small",
            "scores": {"score": 0.3},
        },
    ]
    return trackd.Image(
        pixels,
        caption=f"step {step}",
        boxes={"predictions": {"box_data": boxes, "class_labels": labels}},
        masks={"truth": {"mask_data": media_mask(), "class_labels": labels}},
    )


def log_media() -> None:
    import torch

    trackd.init(project="media", id="pics", name="pics")
    for step in range(MEDIA_STEPS):
        trackd.log({"examples": media_image(step)}, step=step)
    table = trackd.Table(columns=["id", "image", "label"])
    table.add_data(0, trackd.Image(media_image(0)), "cat")
    table.add_data(1, trackd.Image(media_image(1)), "dog")
    trackd.log({"samples": table}, step=MEDIA_STEPS)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    trackd.watch(model, log="gradients", log_freq=1)
    for step in range(MEDIA_STEPS + 1, MEDIA_STEPS + 1 + WATCH_STEPS):
        loss = model(torch.randn(8, 4) * step).pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=False)
        trackd.log({"loss": loss.detach().item()}, step=step)
    trackd.finish()


def log_many(runs: int, keys: int, steps: int) -> None:
    for r in range(runs):
        trackd.init(
            project="many",
            id=f"many{r}",
            name=f"many{r}",
            config={"lr": 10.0 ** -(r % 5), "seed": r},
        )
        for step in range(steps):
            trackd.log({f"m/k{k}": math.sin(step / 100 + k + r) for k in range(keys)})
        trackd.finish()


def log_table(runs: int) -> None:
    for r in range(runs):
        trackd.init(
            project="table", id=f"t{r}", name=f"t{r}", config={"lr": 1.0 / (r + 1), "seed": r}
        )
        trackd.log({"loss": 1.0 / (r + 1)})
        trackd.finish()


def log_team(name: str, lines: int, release: Path | None) -> None:
    import os

    from tqdm import tqdm

    os.environ["TRACKD_SYSTEM_INTERVAL"] = "0.2"  # the daemon this starts samples often
    project = "shared" if release is None else "live"  # a live run stays out of "shared"
    trackd.init(entity="lab", project=project, id=name, name=name, config={"lines": lines})
    for i in range(lines):
        print(f"line {i}", file=sys.stderr if i % 7 == 3 else sys.stdout)
    for _ in tqdm(range(50), desc="bar", file=sys.stderr, mininterval=0, ascii=True):
        time.sleep(0.002)
    import numpy as np

    shade = sum(name.encode()) % 200
    for step in range(30):
        row: dict[str, object] = {"train/loss": 1.0 / (step + 1)}
        if step < 3:  # an image per run and step, for the media compare of selected runs
            pixels = np.full((16, 24, 3), (shade, 40 * step, 90), dtype=np.uint8)
            row["examples"] = trackd.Image(pixels, caption=f"{name} {step}")
        trackd.log(row)
        time.sleep(0.05)
    tick = 0
    while release is not None and not release.exists():
        print(f"tick {tick}")
        tick += 1
        time.sleep(0.1)
    print("done")
    trackd.finish()


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "project":
        log_project()
    elif kind == "live":
        log_live(Path(argv[1]))
    elif kind == "long":
        log_long(int(argv[1]))
    elif kind == "media":
        log_media()
    elif kind == "many":
        log_many(int(argv[1]), int(argv[2]), int(argv[3]))
    elif kind == "table":
        log_table(int(argv[1]))
    elif kind == "team":
        log_team(argv[1], int(argv[2]), Path(argv[3]) if len(argv) > 3 else None)
    elif kind == "secret":
        trackd.init(project="secret", id="hidden", name="hidden", config={"lr": 9.0})
        trackd.log({"train/loss": 1.0})
        trackd.finish()
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
