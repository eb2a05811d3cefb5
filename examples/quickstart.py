"""A small training loop that logs like a real one: config, metrics per step, a summary."""

from __future__ import annotations

import math
import random

import trackd


def main() -> None:
    run = trackd.init(
        project="quickstart",
        config={"lr": 0.01, "epochs": 5, "batch_size": 32, "optimizer": "sgd"},
        tags=["example"],
    )
    run.define_metric("val/loss", summary="min", goal="minimize")
    step = 0
    for epoch in range(run.config.epochs):
        for _ in range(200):
            loss = 2.0 * math.exp(-step / 300) + random.random() * 0.05
            trackd.log({"train/loss": loss, "train/acc": 1 - loss / 2, "epoch": epoch})
            step += 1
        trackd.log({"val/loss": 2.0 * math.exp(-step / 300) + 0.05}, commit=False)
    run.summary["final_step"] = step
    trackd.finish()
    print(f"run {run.name} ({run.id}) is in {run.dir}")


if __name__ == "__main__":
    main()
