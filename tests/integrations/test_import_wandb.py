"""``trackd import wandb``, end to end: real wandb offline runs (the wandb package, in a
subprocess) imported with the real CLI into a real server, and read back from the server."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image as PILImage

pytest.importorskip("wandb", reason="wandb is not installed (pip install -e '.[dev]')")

from trackd.cli.import_wandb import import_wandb  # noqa: E402

from tests._support.server import ServerProcess  # noqa: E402
from tests.e2e.conftest import Remote  # noqa: E402
from tests.integrations.conftest import files  # noqa: E402

STEPS = int(os.environ.get("TRACKD_TEST_WANDB_STEPS", "50"))

# Runs in its own process (wandb starts a service of its own); prints what it logged.
WANDB_SCRIPT = textwrap.dedent(
    """
    import json, math, sys, wandb
    steps, made = int(sys.argv[1]), []
    for exit_code in map(int, sys.argv[2:]):
      run = wandb.init(project="imported", config={"lr": 0.01, "layers": [64, 32],
                     "opt": {"name": "adam", "beta": 0.9}}, tags=["a", "b"], notes="from wandb",
                     group="g1", job_type="train", name="wandb-run")
      run.define_metric("loss", summary="min")
      logged = []
      for i in range(steps):
          row = {"loss": 1.0 / (i + 1), "i": i, "odd": i % 2 == 1,
                 "weird": [float("nan"), float("inf"), -float("inf"), 0.5][i % 4]}
          run.log(row)
          logged.append((i, row))
      run.log({"late": 7.0}, step=steps + 10)
      logged.append((steps + 10, {"late": 7.0}))
      run.summary["best_acc"] = 0.75
      with open(run.dir + "/notes.txt", "w") as f:
          f.write("hello")
      run.save(run.dir + "/notes.txt", base_path=run.dir, policy="now")
      run.finish(exit_code=exit_code)
      made.append({"id": run.id, "dir": run.dir, "logged": logged})
    print(json.dumps(made))
    """
)


def _wandb_runs(tmp_path: Path, steps: int, *exit_codes: int) -> list[dict[str, Any]]:
    """One wandb offline run per exit code, each logging ``steps`` rows (and one more)."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true")
    out = subprocess.run(
        [sys.executable, "-c", WANDB_SCRIPT, str(steps), *map(str, exit_codes)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1], parse_constant=float)
    assert isinstance(result, list)
    return result


def _import(server: ServerProcess, *paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackd", "import", "wandb", *paths],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False,
    )  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def test_wandb_runs_land_with_every_step_config_summary_files_and_state_once(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    made, failed = _wandb_runs(tmp_path, STEPS, 0, 2)
    run_id = made["id"]
    done = _import(online, str(tmp_path / "wandb"))
    assert done.returncode == 0, done.stderr
    assert "2 of 2 runs imported" in done.stderr
    doc = remote.run("imported", run_id)
    assert doc is not None and doc["state"] == "finished"
    assert doc["name"] == "wandb-run" and doc["notes"] == "from wandb"
    assert doc["tags"] == ["a", "b"] and doc["group"] == "g1" and doc["job_type"] == "train"
    assert doc["config"] == {"lr": 0.01, "layers": [64, 32], "opt": {"name": "adam", "beta": 0.9}}
    rows = remote.history("imported", run_id)
    assert [r["_step"] for r in rows] == [step for step, _ in made["logged"]]
    for row, (_, logged) in zip(rows, made["logged"], strict=True):
        assert all(_same(row[k], v) for k, v in logged.items()), (row, logged)
    times = [r["_timestamp"] for r in rows]
    assert times == sorted(times) and times[0] > 1.7e9  # wandb's times, not the import's
    assert doc["summary"]["best_acc"] == 0.75 and doc["summary"]["late"] == 7.0
    assert doc["summary"]["loss"] == {"min": 1.0 / STEPS}  # as wandb keeps it, with summary="min"
    assert "notes.txt" in files(remote, "imported", run_id)
    assert remote.run("imported", failed["id"])["exit_code"] == 2

    # the import's process has exited: each run stays as wandb ended it (before the fix the
    # daemon took the syncing process for the runs' writer, and marked them crashed)
    time.sleep(3)  # the daemon notices a dead writer within ~2 s, then marks its run crashed
    assert remote.run("imported", run_id)["state"] == "finished"
    assert remote.run("imported", failed["id"])["state"] == "failed"

    # a second import doubles nothing, with the local copy or without it
    again = _import(online, str(tmp_path / "wandb"))
    assert again.returncode == 0 and again.stderr.count("already imported") == 2, again.stderr
    shutil.rmtree(Path(os.environ["TRACKD_DIR"]))
    third = _import(online, str(Path(made["dir"]).parent))  # a run directory, this time
    assert third.returncode == 0, third.stderr
    assert len(remote.history("imported", run_id)) == len(made["logged"])


def test_a_missing_path_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_wandb([str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "nowhere" in err and len(err.splitlines()) == 1


# A run logging media, and a run resumed twice (offline, where wandb cannot know the run's
# last step): the second attempt logs at steps of its own above the first's (kept), the third
# starts again at step 0 (shifted to follow, as trackd shifts a resumed trainer's steps).
MEDIA_AND_RESUMED_SCRIPT = textwrap.dedent(
    """
    import json, time, numpy as np, wandb
    run = wandb.init(project="imported-media")
    for i in range(3):
        pixels = np.full((4, 6, 3), 40 * i, dtype=np.uint8)
        run.log({"img": wandb.Image(pixels, caption=f"step {i}"), "loss": float(i),
                 "hist": wandb.Histogram(np_histogram=([1, i, 3], [0.0, 1.0, 2.0, 3.0])),
                 "tab": wandb.Table(columns=["i", "name"], data=[[i, f"row {i}"]])})
    run.finish()
    for attempt in range(3):
        again = wandb.init(project="imported-resumed", id="resumed-1", resume="allow",
                           config={f"attempt{attempt}": True})
        for i in range(2):
            row = {"loss": 10.0 * attempt + i}
            again.log(row, step=5 + i if attempt == 1 else None)
        again.finish()
        time.sleep(1.1)  # wandb names run directories by the second they start
    print(json.dumps({"id": run.id}))
    """
)


def test_wandb_media_and_a_resumed_run_land_as_trackd_media_and_one_run(
    online: ServerProcess, remote: Remote, tmp_path: Path
) -> None:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true")
    out = subprocess.run(
        [sys.executable, "-c", MEDIA_AND_RESUMED_SCRIPT], capture_output=True, text=True,
        timeout=120, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    run_id = json.loads(out.stdout.strip().splitlines()[-1])["id"]
    assert len(list((tmp_path / "wandb").glob("offline-run-*-resumed-1/run-resumed-1.wandb"))) == 3
    done = _import(online, str(tmp_path / "wandb"))
    assert done.returncode == 0, done.stderr
    assert "2 of 2 runs imported" in done.stderr and "skipped" not in done.stderr, done.stderr
    assert "shifted by 7" in done.stderr, done.stderr

    # the resumed run: one run, every attempt's rows once, in order
    rows = remote.history("imported-resumed", "resumed-1")
    assert [(r["_step"], r["loss"]) for r in rows] == [
        (0, 0.0), (1, 1.0), (5, 10.0), (6, 11.0), (7, 20.0), (8, 21.0)
    ]  # fmt: skip
    times = [r["_timestamp"] for r in rows]
    assert times == sorted(times)
    doc = remote.run("imported-resumed", "resumed-1")
    assert doc["state"] == "finished"
    assert doc["config"] == {"attempt0": True, "attempt1": True, "attempt2": True}
    assert doc["summary"]["loss"] == 21.0

    got = remote.get(f"/runs/admin/imported-media/{run_id}/media")["media"]
    assert [m["step"] for m in got["img"]] == [0, 1, 2]
    for i, shown in enumerate(got["img"]):
        image = shown["value"]
        assert image["_type"] == "image-file" and image["caption"] == f"step {i}"
        assert (image["width"], image["height"], image["format"]) == (6, 4, "png")
        blob = httpx.get(online.url + image["url"], headers=_auth(online), trust_env=False)
        assert blob.status_code == 200
        with PILImage.open(io.BytesIO(blob.content)) as png:
            assert png.convert("RGB").getextrema() == ((40 * i, 40 * i),) * 3
    assert [m["value"] for m in got["hist"]] == [
        {"_type": "histogram", "bins": [0.0, 1.0, 2.0, 3.0], "values": [1, i, 3]} for i in range(3)
    ]
    assert [m["value"] for m in got["tab"]] == [
        {"_type": "table", "columns": ["i", "name"], "data": [[i, f"row {i}"]]} for i in range(3)
    ]
    assert [r["loss"] for r in remote.history("imported-media", run_id)] == [0.0, 1.0, 2.0]
    summary = remote.run("imported-media", run_id)["summary"]
    assert summary["img"] == {"_type": "image", "width": 6, "height": 4, "caption": "step 2"}
    assert summary["hist"] == got["hist"][-1]["value"] and summary["tab"] == got["tab"][-1]["value"]
    # the media files are the run's media, not files of it too
    assert not [name for name in files(remote, "imported-media", run_id) if "media/" in name]
    again = _import(online, str(tmp_path / "wandb"))
    assert again.returncode == 0 and again.stderr.count("already imported") == 2, again.stderr
    assert len(remote.history("imported-resumed", "resumed-1")) == 6


def _auth(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}
