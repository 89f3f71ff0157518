"""LightningModule for sequence-to-sequence training: teacher forcing, optional label smoothing."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from models.config import TrainConfig
from models.families.seq2seq.network import Seq2Seq
from models.optim import build_optimization, log_learning_rate


class Seq2SeqModule(pl.LightningModule):
    """Trains a ``Seq2Seq`` to predict every next target token from the true previous ones.

    Only real target tokens are scored: padding never reaches the output layer. ``val_loss``
    (unsmoothed cross-entropy per token) drives early stopping and checkpoints, and
    ``val_perplexity`` is its exponential.
    """

    monitor = "val_loss"
    monitor_mode = "min"

    def __init__(self, network: Seq2Seq, config: TrainConfig):
        super().__init__()
        self.network = network
        self.config = config
        self.train_loss = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.val_loss = nn.CrossEntropyLoss()

    def _logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        targets = batch["targets"]  # [BOS] w1 ... wn [EOS], right-padded
        expected = targets[:, 1:]
        scored = expected != 0
        return self.network(batch["inputs"], batch["lengths"], targets[:, :-1], scored), expected[scored]

    def loss_on(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss on a batch (teacher forced, label smoothed), without logging.

        Args:
            batch: A loader batch: source ``inputs``, their ``lengths`` and padded ``targets``.

        Returns:
            The cross-entropy per real target token (a scalar tensor in the autograd graph).
        """
        return self.train_loss(*self._logits(batch))

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        """One optimisation step on a batch of sentence pairs."""
        loss = self.loss_on(batch)
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(batch["lengths"])
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        """Accumulate the validation cross-entropy per token."""
        logits, expected = self._logits(batch)
        loss = self.val_loss(logits, expected)
        tokens = len(expected)
        self.log("val_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=tokens)

    def on_validation_epoch_end(self) -> None:
        """Log perplexity next to the loss."""
        loss = self.trainer.callback_metrics.get("val_loss")
        if loss is not None:
            self.log("val_perplexity", torch.exp(loss), sync_dist=True)

    def on_train_epoch_start(self) -> None:
        """Log the learning rate the epoch trains with."""
        log_learning_rate(self)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser and schedule from the training config."""
        return build_optimization(self.parameters(), self.config, self.monitor, self.monitor_mode)
