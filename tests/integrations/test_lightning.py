"""The Lightning logger, end to end: a real ``Trainer`` fits a tiny model on CPU for a few
steps with ``TrackdLogger``; the test reads back from a real server what landed."""

from __future__ import annotations

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
