"""Optimisers and learning-rate schedules chosen by name in ``TrainConfig``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from models.config import TrainConfig


def build_optimization(
    parameters: Iterable[torch.nn.Parameter], config: TrainConfig, monitor: str, mode: str
) -> dict[str, Any]:
    """Return Lightning's ``configure_optimizers`` dict for the configured optimiser and schedule.

    Args:
        parameters: Trainable parameters.
        config: Optimiser, learning rate, weight decay and schedule.
        monitor: Validation metric a ``plateau`` schedule watches.
        mode: ``max`` or ``min``: the direction in which ``monitor`` improves.

    Returns:
        ``{"optimizer": ..., "lr_scheduler": ...}`` (no scheduler for ``none``).
    """
    optimizers = {
        "adam": lambda p: torch.optim.Adam(p, lr=config.learning_rate, weight_decay=config.weight_decay),
        "rmsprop": lambda p: torch.optim.RMSprop(
            p, lr=config.learning_rate, weight_decay=config.weight_decay
        ),
        "sgd": lambda p: torch.optim.SGD(
            p, lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay
        ),
    }
    optimizer = optimizers[config.optimizer](parameters)
    if config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
    if config.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor}}
    return {"optimizer": optimizer}


def log_learning_rate(module: Any) -> None:
    """Log the learning rate a LightningModule's epoch trains with (the same on every rank)."""
    rate = module.optimizers().param_groups[0]["lr"]
    module.log("learning_rate", rate, on_step=False, on_epoch=True, sync_dist=True)
