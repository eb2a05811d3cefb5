"""The Lightning logger, end to end: a real ``Trainer`` fits a tiny model on CPU for a few
steps with ``TrackdLogger``; the test reads back from a real server what landed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pl = pytest.importorskip(
    "lightning.pytorch", reason="lightning is not installed (pip install -e '.[dev]')"
)
torch = pytest.importorskip("torch")

from trackd.integrations.lightning import STEP_KEY, TrackdLogger, rank_zero_only  # noqa: E402

from tests.e2e.conftest import Remote  # noqa: E402
from tests.integrations.conftest import files, wait_for  # noqa: E402

# lightning 2.6.6 on torch 2.13 uses an API torch deprecates; the warning is not ours
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")

DDP = os.environ.get("TRACKD_TEST_DDP") == "1" or os.environ.get("TRACKD_SCALE") == "full"
STEPS_PER_EPOCH = 4
EPOCHS = 2


class TinyModel(pl.LightningModule):  # type: ignore[misc,name-defined]
    """y = 2x + 1 with one linear layer; fails at ``fail_at_step`` when given."""

    def __init__(self, lr: float = 0.1, fail_at_step: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(1, 1)

    def forward(self, x: Any) -> Any:
        return self.layer(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.fail_at_step is not None and self.global_step >= self.hparams.fail_at_step:
            raise RuntimeError("the fit fails on purpose")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def on_validation_epoch_end(self) -> None:
        pixels = np.full((4, 6, 3), 10 * self.current_epoch, dtype=np.uint8)
        self.logger.log_image("samples", [pixels], caption=["epoch"])
        self.logger.log_table(
            "preds", columns=["epoch", "w"], data=[[self.current_epoch, self.layer.weight.item()]]
        )

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loader() -> Any:
    x = torch.linspace(-1, 1, STEPS_PER_EPOCH * 2).unsqueeze(1)
    data = torch.utils.data.TensorDataset(x, 2 * x + 1)
    return torch.utils.data.DataLoader(data, batch_size=2)


def _trainer(logger: TrackdLogger, root: Path, **kw: Any) -> Any:
    return pl.Trainer(
        logger=logger,
        default_root_dir=root,
        accelerator="cpu",
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


def test_a_fit_lands_as_one_run_with_config_metrics_media_and_checkpoints(
    online: Any, remote: Remote, tmp_path: Path
) -> None:
    logger = TrackdLogger(project="lit", log_model=True, tags=["tiny"])
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=1, monitor="val_loss")
    model = TinyModel(lr=0.05)
    trainer = _trainer(logger, tmp_path, max_epochs=EPOCHS, callbacks=[ckpt])
    logger.watch(model, log="parameters", log_freq=1)
    trainer.fit(model, _loader(), _loader())
    run_id = logger.version
    doc = remote.run("lit", run_id)
    assert doc is not None and doc["state"] == "finished"
    assert doc["config"]["lr"] == 0.05 and doc["config"]["fail_at_step"] is None
    assert doc["tags"] == ["tiny"]
    rows = remote.history("lit", run_id)
    train = [r for r in rows if "train_loss" in r]
    # every optimizer step is logged at the trainer's step, and says so in trainer/global_step
    assert [r["_step"] for r in train] == list(range(STEPS_PER_EPOCH * EPOCHS))
    assert all(r[STEP_KEY] == r["_step"] for r in train)
    # validation metrics, and what was logged without a step, join the epoch's last step
    epoch_ends = [STEPS_PER_EPOCH * e - 1 for e in range(1, EPOCHS + 1)]
    assert [r["_step"] for r in rows if "val_loss" in r] == epoch_ends
    assert len(rows) == STEPS_PER_EPOCH * EPOCHS
    media = remote.get(f"/runs/admin/lit/{run_id}/media")["media"]
    assert [m["step"] for m in media["samples"]] == epoch_ends
    image = media["samples"][1]["value"]["items"][0]
    assert (image["width"], image["height"], image["caption"]) == (6, 4, "epoch")
    assert [m["value"]["data"][0][0] for m in media["preds"]] == list(range(EPOCHS))
    # watch(): a parameter histogram at each step the model ran forward in training
    assert len(media["parameters/layer.weight"]) >= STEPS_PER_EPOCH * EPOCHS
    saved = wait_for(lambda: files(remote, "lit", run_id))
    assert saved == [Path(ckpt.best_model_path).name]

    # trainer.test after fit logs into the same run, resumed
    _trainer(logger, tmp_path).test(model, _loader())
    doc = remote.run("lit", run_id)
    assert doc["state"] == "finished" and "test_loss" in doc["summary"]


def test_a_failed_fit_marks_the_run_failed_and_resume_continues_it(
    online: Any, remote: Remote, tmp_path: Path
) -> None:
    logger = TrackdLogger(project="lit")
    with pytest.raises(RuntimeError, match="on purpose"):
        _trainer(logger, tmp_path, max_steps=6).fit(TinyModel(fail_at_step=3), _loader(), _loader())
    run_id = logger.version
    assert remote.run("lit", run_id)["state"] == "failed"

    again = TrackdLogger(project="lit", id=run_id, resume="allow")
    _trainer(again, tmp_path, max_steps=2).fit(TinyModel(), _loader(), _loader())
    assert again.version == run_id
    assert remote.run("lit", run_id)["state"] == "finished"
    steps = [r["_step"] for r in remote.history("lit", run_id) if "train_loss" in r]
    # the second trainer starts at step 0, behind the run: its rows follow, none is dropped
    assert steps == [0, 1, 2, 3, 4]


def test_ranks_other_than_zero_log_nothing(online: Any, tmp_path: Path) -> None:
    logger = TrackdLogger(project="lit", dir=str(tmp_path))
    saved_rank = rank_zero_only.rank
    rank_zero_only.rank = 1
    try:
        logger.log_hyperparams({"lr": 1})
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.finalize("success")
    finally:
        rank_zero_only.rank = saved_rank
    assert logger._run is None and logger.version is None
    assert not (tmp_path / "trackd").exists() and list(tmp_path.iterdir()) == []


# A 2-process DDP fit (gloo, CPU): Lightning's subprocess launcher starts rank 1 by running
# this script again, so each rank makes its own logger, with its own id proposal.
DDP_SCRIPT = """
import json, sys, torch
import lightning.pytorch as pl
from trackd.integrations.lightning import TrackdLogger

class Ranked(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.save_hyperparameters({"lr": 0.1})
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
        self.log("loss", loss)
        self.log("rank", float(self.global_rank))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

if __name__ == "__main__":
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x + 1), batch_size=2)
    logger = TrackdLogger(project="lit-ddp", log_rank="all")
    trainer = pl.Trainer(logger=logger, accelerator="cpu", devices=2, strategy="ddp",
                         max_steps=3, log_every_n_steps=1, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(Ranked(), data)
    if trainer.global_rank == 0:
        print(json.dumps({"id": logger.version}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not DDP, reason="a 2-process fit takes ~30 s: set TRACKD_TEST_DDP=1")
def test_log_rank_all_makes_every_rank_of_a_ddp_fit_a_writer_of_one_run(
    online: Any, remote: Remote, tmp_path: Path
) -> None:
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads(done.stdout.strip().splitlines()[-1])["id"]
    doc = remote.run("lit-ddp", run_id)
    assert doc is not None and doc["state"] == "finished" and doc["config"]["lr"] == 0.1
    writers = sorted((w["label"], w["primary"], w["state"]) for w in doc["writers"])
    assert writers == [("rank-0", True, "finished"), ("rank-1", False, "finished")]
    rows = remote.history("lit-ddp", run_id)
    for rank in (0, 1):
        mine = [r for r in rows if f"rank-{rank}/loss" in r]
        assert [r["_step"] for r in mine] == [0, 1, 2], rows
        assert all(r[f"rank-{rank}/rank"] == rank for r in mine)
    # one run: no run of either rank's own besides it
    listing = remote.get("/entities/admin/projects/lit-ddp/runs")
    assert [r["id"] for r in listing["runs"]] == [run_id]


def test_log_rank_all_logs_each_rank_as_a_writer_of_the_run(
    online: Any, remote: Remote, tmp_path: Path
) -> None:
    """The same in one process (the default run's stand-in for the DDP fit above): rank 1's
    logger, then rank 0's, as Lightning's strategy sets the rank in each process."""
    saved_rank = rank_zero_only.rank
    loggers = []
    try:
        for rank in (1, 0):
            rank_zero_only.rank = rank
            logger = TrackdLogger(project="lit-ranks", id="ranked", log_rank="all")
            logger.log_hyperparams({"lr": 0.5})
            for step in range(3):
                logger.log_metrics({"loss": rank + step / 10}, step=step)
            logger.finalize("success")
            loggers.append(logger)
    finally:
        rank_zero_only.rank = saved_rank
    assert [x.version for x in loggers] == ["ranked", "ranked"]
    doc = remote.run("lit-ranks", "ranked")
    assert doc is not None and doc["state"] == "finished" and doc["config"]["lr"] == 0.5
    writers = sorted((w["label"], w["primary"], w["state"]) for w in doc["writers"])
    assert writers == [("rank-0", True, "finished"), ("rank-1", False, "finished")]
    rows = remote.history("lit-ranks", "ranked")
    assert [(r["_step"], r["rank-0/loss"], r["rank-1/loss"]) for r in rows] == [
        (s, s / 10, 1 + s / 10) for s in range(3)
    ]
    with pytest.raises(ValueError, match="log_rank='sometimes'"):
        TrackdLogger(log_rank="sometimes")
