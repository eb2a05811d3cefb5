"""PyTorch Lightning with trackd: a tiny regression fitted on CPU, logged as one run.

    pip install -e '.[dev]'         # or: pip install trackd lightning
    python examples/integrations/lightning_example.py

Offline unless ``TRACKD_BASE_URL``/``TRACKD_API_KEY`` point at a server (``trackd login``);
``trackd sync`` uploads an offline run later.
"""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from trackd.integrations.lightning import TrackdLogger


class Regression(pl.LightningModule):
    """Fits y = 2x + 1 with one linear layer."""

    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()  # -> the run's config
        self.layer = torch.nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train/loss", loss)  # -> history at the trainer's step
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self(x), y))

    def on_validation_epoch_end(self) -> None:
        shade = np.full((8, 8), 25 * self.current_epoch, dtype=np.uint8)
        self.logger.log_image("val/sample", [shade], caption=[f"epoch {self.current_epoch}"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader() -> torch.utils.data.DataLoader:
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x + 1), batch_size=8)


def main() -> None:
    logger = TrackdLogger(project="lightning-example", log_model=True)
    model = Regression(lr=0.1)
    logger.watch(model, log="all", log_freq=4)
    trainer = pl.Trainer(logger=logger, max_epochs=3, accelerator="cpu", log_every_n_steps=2)
    trainer.fit(model, loader(), loader())
    print(f"run {logger.version} in project {logger.name}: {logger.experiment.dir}")


if __name__ == "__main__":
    main()
