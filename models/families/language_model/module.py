"""LightningModule for language modelling: cross-entropy over every next token of a window."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from models.config import TrainConfig
from models.optim import build_optimization, log_learning_rate


class LanguageModelModule(pl.LightningModule):
    """Trains a ``LanguageModel``; ``val_loss`` (nats per token) drives early stopping and checkpoints."""

    monitor = "val_loss"
    monitor_mode = "min"

    def __init__(self, network: nn.Module, config: TrainConfig):
        super().__init__()
        self.network = network
        self.config = config
        self.loss = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def loss_on(self, batch: list[torch.Tensor]) -> torch.Tensor:
        """The training loss on a batch, without logging.

        Args:
            batch: A loader batch: a one-element list holding the ``(batch, window + 1)`` token windows.

        Returns:
            The cross-entropy of every next token (a scalar tensor in the autograd graph).
        """
        windows = batch[0]
        logits, _ = self.network(windows[:, :-1])
        return self.loss(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))

    def _step(self, batch: list[torch.Tensor], stage: str) -> torch.Tensor:
        loss = self.loss_on(batch)
        self.log(
            f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(batch[0])
        )
        return loss

    def training_step(self, batch: list[torch.Tensor], batch_index: int) -> torch.Tensor:
        """One optimisation step on a batch of windows (truncated backpropagation through time)."""
        return self._step(batch, "train")

    def validation_step(self, batch: list[torch.Tensor], batch_index: int) -> None:
        """Accumulate the validation cross-entropy."""
        self._step(batch, "val")

    def on_train_epoch_start(self) -> None:
        """Log the learning rate the epoch trains with."""
        log_learning_rate(self)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser and schedule from the training config."""
        return build_optimization(self.parameters(), self.config, self.monitor, self.monitor_mode)
