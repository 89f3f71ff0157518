"""LightningModule for direct multi-horizon forecasting: MSE or MAE loss, scaled-unit metrics per epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from models.config import TrainConfig
from models.optim import build_optimization

LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss}


class ForecasterModule(pl.LightningModule):
    """Trains a ``Forecaster``; ``val_mse`` (z-scored target) drives early stopping and checkpoints."""

    monitor = "val_mse"
    monitor_mode = "min"

    def __init__(self, network: nn.Module, config: TrainConfig):
        super().__init__()
        self.network = network
        self.config = config
        self.loss = LOSSES[config.loss]()

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Forecast ``(batch, horizon)`` for a batch of histories."""
        return self.network(inputs, lengths)

    def _forecast_and_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        forecast = self(batch["inputs"], batch["lengths"])
        return forecast, self.loss(forecast, batch["targets"])

    def loss_on(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss on a batch, without logging.

        Args:
            batch: A loader batch: ``inputs``, ``lengths`` and ``targets`` (horizon per row).

        Returns:
            The configured loss (MSE or MAE) as a scalar tensor in the autograd graph.
        """
        return self._forecast_and_loss(batch)[1]

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        forecast, loss = self._forecast_and_loss(batch)
        error = forecast - batch["targets"]
        size = len(forecast)
        self.log(f"{stage}_mse", error.pow(2).mean(), on_step=False, on_epoch=True, batch_size=size)
        self.log(f"{stage}_mae", error.abs().mean(), on_step=False, on_epoch=True, batch_size=size)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        """One optimisation step on a batch of windows."""
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        """Accumulate validation errors."""
        self._step(batch, "val")

    def on_train_epoch_start(self) -> None:
        """Log the learning rate the epoch trains with."""
        self.log("learning_rate", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser and schedule from the training config."""
        return build_optimization(self.parameters(), self.config, self.monitor, self.monitor_mode)
