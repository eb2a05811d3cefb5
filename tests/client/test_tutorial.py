"""The tutorial's logging code (issue 8) runs unchanged with ``import trackd as wandb``, and
everything it logged reads back from the run log."""

from __future__ import annotations

import numpy as np
import pytest
import trackd as wandb

from ._rich import pixels

torch = pytest.importorskip("torch")
nn = torch.nn


def test_tutorial_snippet_runs_unchanged() -> None:
    model = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = wandb.init(project="tutorial", config={"lr": 0.1})
    wandb.watch(model, log="gradients", log_freq=2)
    images = torch.rand(4, 3, 8, 8)
    targets = (torch.rand(4, 1, 8, 8) > 0.5).long()
    for epoch in range(4):
        pred = torch.sigmoid(model(images))
        loss = nn.functional.binary_cross_entropy(pred, targets.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        cur_lr = opt.param_groups[0]["lr"]
        wandb.log(
            {
                "loss": loss,
                "epoch": epoch,
                "learning rate": cur_lr,
                "images": wandb.Image(images.float()),
                "masks": {
                    "true": wandb.Image(targets.float()),
                    "pred": wandb.Image((pred > 0.5).float()),
                },
            }
        )
    wandb.finish()
    rows = wandb.read_run(run.dir).history
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert all(isinstance(r["loss"], float) and r["learning rate"] == 0.1 for r in rows)
    grid = pixels(rows[0]["images"])
    assert grid.shape == (8 + 4, 4 * 10 + 2, 3) and grid.max() == 255
    true = pixels(rows[2]["masks.true"])
    cells = [true[2:10, 2 + 10 * k : 10 + 10 * k] for k in range(4)]
    expected = (targets[:, 0].numpy() * 255).astype(np.uint8)
    assert all(np.array_equal(cell, expected[k]) for k, cell in enumerate(cells))
    assert [("gradients/0.weight" in r) for r in rows] == [False, True, False, True]
