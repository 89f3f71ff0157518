"""LightningModule for sequence classification: cross-entropy, macro metrics per epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from models.config import TrainConfig
from models.optim import build_optimization, log_learning_rate


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Accuracy plus macro precision, recall and F1, named like the task's test metrics."""
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "macro_f1": MulticlassF1Score(num_classes, average="macro"),
        },
        prefix=prefix,
    )


class ClassifierModule(pl.LightningModule):
    """Trains a ``SequenceClassifier`` with backpropagation through time.

    Gradient-norm clipping is applied by the Trainer (``gradient_clip_val``), the optimiser and
    schedule come from ``TrainConfig``, and ``val_macro_f1`` drives early stopping and checkpoints.
    """

    monitor = "val_macro_f1"
    monitor_mode = "max"

    def __init__(self, network: nn.Module, num_classes: int, config: TrainConfig):
        super().__init__()
        self.network = network
        self.config = config
        self.loss = nn.CrossEntropyLoss()
        self.train_metrics = classification_metrics(num_classes, "train_")
        self.val_metrics = classification_metrics(num_classes, "val_")

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class logits for a padded batch (token ids or vectors per step)."""
        return self.network(inputs, lengths)

    def _logits_and_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["inputs"], batch["lengths"])
        return logits, self.loss(logits, batch["targets"])

    def loss_on(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss on a batch, without logging or metric updates.

        Args:
            batch: A loader batch: ``inputs``, ``lengths`` and ``targets``.

        Returns:
            The mean cross-entropy (a scalar tensor in the autograd graph).
        """
        return self._logits_and_loss(batch)[1]

    def _step(
        self, batch: dict[str, torch.Tensor], metrics: MetricCollection, stage: str, batch_index: int
    ) -> torch.Tensor:
        logits, loss = self._logits_and_loss(batch)
        # Updated every batch, computed once per epoch. Handing the metric objects to ``log_dict`` once
        # an epoch is enough for Lightning to compute and reset them at its end; every batch, it costs
        # more than a small network's step saves (benchmarks/training.py).
        metrics.update(logits, batch["targets"])
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(logits))
        if batch_index == 0:
            self.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        """One optimisation step on a batch."""
        return self._step(batch, self.train_metrics, "train", batch_index)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        """Accumulate validation loss and metrics."""
        self._step(batch, self.val_metrics, "val", batch_index)

    def on_train_epoch_start(self) -> None:
        """Log the learning rate the epoch trains with."""
        log_learning_rate(self)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimiser and schedule from the training config."""
        return build_optimization(self.parameters(), self.config, self.monitor, self.monitor_mode)
