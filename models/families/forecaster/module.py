"""LightningModule for direct multi-horizon forecasting: MSE or MAE loss, scaled-unit metrics per epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from models.config import TrainConfig
from models.optim import build_optimization, log_learning_rate

LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss}


def forecast_errors(prefix: str) -> MetricCollection:
    """Mean squared and mean absolute error over every forecast step, in scaled units."""
    return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}, prefix=prefix)


class ForecasterModule(pl.LightningModule):
    """Trains a ``Forecaster``; ``val_mse`` (z-scored target) drives early stopping and checkpoints."""

    monitor = "val_mse"
    monitor_mode = "min"

    def __init__(self, network: nn.Module, config: TrainConfig):
        super().__init__()
        self.network = network
        self.config = config
        self.loss = LOSSES[config.loss]()
        self.train_errors = forecast_errors("train_")
        self.val_errors = forecast_errors("val_")

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

    def _step(self, batch: dict[str, torch.Tensor], stage: str, batch_index: int) -> torch.Tensor:
        forecast, loss = self._forecast_and_loss(batch)
        errors = self.train_errors if stage == "train" else self.val_errors
        # Updated every batch, computed and reset by Lightning once per epoch: handing it the metric
        # objects once is enough, and cheaper than logging two values every step.
        errors.update(forecast.detach(), batch["targets"])
        self.log(
            f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(forecast)
        )
        if batch_index == 0:
            self.log_dict(errors, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        """One optimisation step on a batch of windows."""
        return self._step(batch, "train", batch_index)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        """Accumulate validation errors."""
        self._step(batch, "val", batch_index)

    def on_train_epoch_start(self) -> None:
        """Log the learning rate the epoch trains with."""
        log_learning_rate(self)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser and schedule from the training config."""
        return build_optimization(self.parameters(), self.config, self.monitor, self.monitor_mode)
