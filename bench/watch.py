"""What ``trackd.watch()`` adds to a training step, and what logging an image costs the
training thread, as JSON.

- ``watch``: a small CNN (two conv layers and a linear layer, batch 32 of 1x28x28) trained
  on the CPU with one thread, each step ``log({"loss": ...})``; a step of an unwatched copy
  and a step of a copy under ``watch(model, log="all", log_freq=10)`` take turns, so a busy
  shared machine slows both alike. ``overhead_*_pct`` compares the mean step times (the
  histogram steps included), by the wall clock and by this thread's CPU time.
- ``image``: per-call time of ``run.log({"img": trackd.Image(arr)})`` for a 256x256x3 uint8
  array (construction included), beside ``pack_only`` (msgpack packing the same buffer) and
  ``pil_png_encode`` (what encoding it to PNG in the training process would cost).

Usage: ``python bench/watch.py [--steps 2000] [--images 300]``. Offline mode, the
real daemon; run dirs in a temporary directory.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import tempfile
import time
from typing import Any

import msgpack
import numpy as np
from _latency import percentiles  # bench/ is on sys.path when a bench script runs
from PIL import Image as PILImage


def _model() -> Any:
    import torch
    from torch import nn

    class SmallCNN(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc = nn.Linear(32 * 7 * 7, 10)

        def forward(self, x: Any) -> Any:
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.fc(x.flatten(1))

    return SmallCNN()


def _step(run: Any, model: Any, opt: Any, data: Any) -> tuple[int, int]:
    """One training step; its wall time and this thread's CPU time, in ns."""
    import torch

    x, y = data
    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    run.log({"loss": loss.item()})
    return time.perf_counter_ns() - t0, time.thread_time_ns() - c0


def bench_watch(steps: int) -> dict[str, Any]:
    import torch
    import trackd

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = (torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,)))
    plain_model = _model()
    watched_model = copy.deepcopy(plain_model)
    run = trackd.init(project="bench-watch")
    trackd.watch(watched_model, log="all", log_freq=10)
    arms = {
        "plain": (plain_model, torch.optim.SGD(plain_model.parameters(), lr=0.01)),
        "watched": (watched_model, torch.optim.SGD(watched_model.parameters(), lr=0.01)),
    }
    times: dict[str, list[tuple[int, int]]] = {"plain": [], "watched": []}
    for i in range(steps + 20):
        # step by step, in turn (and in alternating order), so a busy machine slows both
        order = ("plain", "watched") if i % 2 else ("watched", "plain")
        for name in order:
            sample = _step(run, *arms[name], data)
            if i >= 20:  # warm-up steps are not counted
                times[name].append(sample)
    run.finish()
    out: dict[str, Any] = {"steps_each": steps, "log_freq": 10}
    for name, samples in times.items():
        out[f"{name}_wall_mean_ms"] = round(sum(w for w, _ in samples) / len(samples) / 1e6, 3)
        out[f"{name}_cpu_mean_ms"] = round(sum(c for _, c in samples) / len(samples) / 1e6, 3)
    for clock in ("wall", "cpu"):
        plain, watched = out[f"plain_{clock}_mean_ms"], out[f"watched_{clock}_mean_ms"]
        out[f"overhead_{clock}_pct"] = round(100 * (watched - plain) / plain, 2)
    return out


def bench_image(calls: int) -> dict[str, Any]:
    import trackd

    arr = np.random.default_rng(0).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    run = trackd.init(project="bench-image")
    clock = time.perf_counter_ns
    samples = []
    for _ in range(calls):
        t0 = clock()
        run.log({"img": trackd.Image(arr)})
        samples.append(clock() - t0)
        time.sleep(0.002)  # a training step between images: the daemon keeps up
    run.finish()
    pack = msgpack.Packer(use_bin_type=True).pack
    packs = []
    for _ in range(calls):
        t0 = clock()
        pack({"img": {"pixels": arr.data.cast("B")}})
        packs.append(clock() - t0)
    pngs = []
    for _ in range(min(calls, 100)):
        t0 = clock()
        PILImage.fromarray(arr).save(io.BytesIO(), format="PNG")
        pngs.append(clock() - t0)
    return {
        "shape": [256, 256, 3],
        "log_image": percentiles(samples),
        "pack_only": percentiles(packs),
        "pil_png_encode": percentiles(pngs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TRACKD_DIR", os.path.join(tmp, "runs"))
        os.environ.setdefault("TRACKD_MODE", "offline")
        os.environ.setdefault("TRACKD_SILENT", "1")
        result = {
            "watch": bench_watch(args.steps),
            "image": bench_image(args.images),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
