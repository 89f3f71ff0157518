"""Gradient-flow diagnostics: does the loss still reach the early steps of a sequence?

``GradientFlow`` is a Lightning callback, generic over network families. Twice per fit (after the
first epoch and at the end of training) it measures ``||dL/dh_t||``, the norm of the loss gradient
with respect to the top recurrent layer's output at every time step, on one fixed validation batch:
a plain RNN's gradient fades toward the first steps of a long sequence, an LSTM's or GRU's much less.
Every optimiser step it also records the global and per-layer gradient norms (before clipping) and
whether clipping cut the step. None of it changes training: the profile uses ``torch.autograd.grad``
(no parameter's ``.grad`` is touched), the network in eval mode, and no random draw.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.apply_func import move_data_to_device
from lightning_utilities.core.apply_func import apply_to_collection
from torch import nn

from models.hidden_gradients import hidden_gradient_profile, top_recurrent_layer

log = logging.getLogger(__name__)
FIRST, LAST = "first epoch", "last epoch"
Report = Callable[[dict[str, float], int], None]
SUMMARY_KEYS = ("hidden_profiles", "profile_epochs", "layer_norms", "global_norms", "clipped_steps", "steps")
SUMMARY_KEYS += ("epochs", "clip_norm", "recurrent_layer")


def layer_names(module: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Group a module's trainable parameters by a readable layer name.

    The name is the owning module's path without the prefix every parameter shares (``network.``),
    cut after the first list index (``encoder.forward_layers.0`` becomes ``encoder.forward_layer0``)
    or at two components; a stacked ``nn.RNNBase`` is split per layer (``rnn.layer1``).

    Args:
        module: The LightningModule (or any module).

    Returns:
        Layer name to its parameters, in registration order.
    """
    owners = {id(p): m for m in module.modules() for p in m.parameters(recurse=False)}
    named = [(name.split("."), p) for name, p in module.named_parameters() if p.requires_grad]
    paths = [parts[:-1] for parts, _ in named]
    shared = 0
    while paths and all(len(path) > shared + 1 and path[shared] == paths[0][shared] for path in paths):
        shared += 1
    groups: dict[str, list[nn.Parameter]] = {}
    for (parts, parameter), path in zip(named, paths, strict=True):
        kept: list[str] = []
        for part in path[shared:]:
            if part.isdigit() and kept:  # a list entry: its list's name and index, after the first part
                kept = [*kept[:-1][:1], f"{kept[-1].removesuffix('s')}{part}"]
                break
            kept.append(part)
        name = ".".join(kept[:2]) or parts[-1]
        owner = owners[id(parameter)]
        stacked = re.search(r"_l(\d+)", parts[-1])
        if isinstance(owner, nn.RNNBase) and owner.num_layers > 1 and stacked:
            name = f"{name}.layer{stacked.group(1)}"
        groups.setdefault(name, []).append(parameter)
    return groups


class GradientFlow(pl.Callback):
    """Records how the gradient flows through time and layers during a fit.

    Args:
        report: Called at each epoch end with ``{"grad/<layer>": mean norm, "grad/clipped_steps": n}``
            and the epoch (an MLflow logger, for example); ``None`` keeps the numbers here only.

    Attributes:
        hidden_profiles: ``"first epoch"`` / ``"last epoch"`` -> ``||dL/dh_t||`` per time step.
        profile_epochs: The epoch each profile was measured after.
        layer_norms: Per epoch, the mean gradient norm of each layer over its steps (before clipping).
        global_norms: Per epoch, the mean global gradient norm.
        clipped_steps: Per epoch, the steps whose global norm exceeded the Trainer's clip norm.
        steps: Per epoch, the optimiser steps seen.
        epochs: The epoch numbers those lists describe (this fit's epochs).
        clip_norm: The Trainer's ``gradient_clip_val`` (``None`` when it does not clip).
        recurrent_layer: Module path of the recurrent layer whose outputs are profiled.
    """

    def __init__(self, report: Report | None = None):
        self.report = report
        self.hidden_profiles: dict[str, list[float]] = {}
        self.profile_epochs: dict[str, int] = {}
        self.layer_norms: list[dict[str, float]] = []
        self.global_norms: list[float] = []
        self.clipped_steps: list[int] = []
        self.steps: list[int] = []
        self.epochs: list[int] = []
        self.clip_norm: float | None = None
        self.recurrent_layer: str | None = None
        self._batch: Any = None
        self._recurrent: nn.RNNBase | None = None
        self._groups: dict[str, list[nn.Parameter]] = {}
        self._reset_epoch()

    def _reset_epoch(self) -> None:
        self._sums: dict[str, float] = {}
        self._global = 0.0
        self._count = 0
        self._clipped = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Find the layers and the recurrent module; keep a copy of the first validation batch."""
        self._groups = layer_names(pl_module)
        clip = trainer.gradient_clip_val
        self.clip_norm = float(clip) if clip else None
        found = top_recurrent_layer(pl_module)
        if found is None or not callable(getattr(pl_module, "loss_on", None)):
            log.warning("no recurrent layer or no loss_on(batch) on %s: no ||dL/dh_t|| profile", pl_module)
        else:
            self.recurrent_layer, self._recurrent = found
        loaders = trainer.val_dataloaders  # one loader, or a list or dict of them
        if isinstance(loaders, Mapping):
            loaders = list(loaders.values())
        loader = (loaders[0] if loaders else None) if isinstance(loaders, list | tuple) else loaders
        if self._recurrent is not None and loader is not None:
            with torch.random.fork_rng(devices=[]):  # a new loader iterator draws a seed: leave none drawn
                batch = next(iter(loader), None)
            self._keep(batch, pl_module)

    def _keep(self, batch: Any, pl_module: pl.LightningModule) -> None:
        copied = apply_to_collection(batch, torch.Tensor, lambda t: t.detach().clone())
        self._batch = None if batch is None else move_data_to_device(copied, pl_module.device)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Without validation data, the fixed batch is the first training batch."""
        if self._batch is None and self._recurrent is not None:
            self._keep(batch, pl_module)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Add this step's per-layer and global gradient norms (Lightning has not clipped them yet)."""
        squares = []
        for parameters in self._groups.values():
            grads = [p.grad.detach().float().pow(2).sum() for p in parameters if p.grad is not None]
            squares.append(torch.stack(grads).sum() if grads else torch.zeros((), device=pl_module.device))
        if not squares:
            return
        values = torch.stack(squares).tolist()
        for name, square in zip(self._groups, values, strict=True):
            self._sums[name] = self._sums.get(name, 0.0) + math.sqrt(square)
        total = math.sqrt(sum(values))
        self._global += total
        self._count += 1
        self._clipped += int(self.clip_norm is not None and total > self.clip_norm)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the epoch's norms, report them, and profile ``||dL/dh_t||`` after the first epoch."""
        count = max(self._count, 1)
        norms = {name: total / count for name, total in self._sums.items()}
        self.layer_norms.append(norms)
        self.global_norms.append(self._global / count)
        self.clipped_steps.append(self._clipped)
        self.steps.append(self._count)
        self.epochs.append(trainer.current_epoch)
        if self.report is not None:
            metrics = {f"grad/{name}": value for name, value in norms.items()}
            self.report({**metrics, "grad/clipped_steps": float(self._clipped)}, trainer.current_epoch)
        self._reset_epoch()
        if FIRST not in self.hidden_profiles:
            self._profile(FIRST, pl_module, trainer.current_epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Profile ``||dL/dh_t||`` with the weights training ended with."""
        if self.epochs and self.profile_epochs.get(FIRST) == self.epochs[-1]:  # same weights: no rerun
            self.hidden_profiles[LAST] = list(self.hidden_profiles[FIRST])
            self.profile_epochs[LAST] = self.epochs[-1]
        elif self.epochs:
            self._profile(LAST, pl_module, self.epochs[-1])

    def _profile(self, key: str, pl_module: pl.LightningModule, epoch: int) -> None:
        if self._batch is None or self._recurrent is None:
            return
        try:
            self.hidden_profiles[key] = hidden_gradient_profile(pl_module, self._batch, self._recurrent)
        except (RuntimeError, ValueError, TypeError, AttributeError, IndexError) as error:
            # A diagnostic: a network it cannot unroll (packed input, an unusual state) keeps training.
            log.warning("no ||dL/dh_t|| profile after epoch %d: %s", epoch, error)
            return
        self.profile_epochs[key] = epoch

    def summary(self) -> dict[str, Any]:
        """Everything recorded, as plain JSON-friendly values (what ``flows.gradient_plots`` draws).

        Returns:
            The attributes named in ``SUMMARY_KEYS`` (see the class's attributes), copied.
        """
        return copy.deepcopy({key: getattr(self, key) for key in SUMMARY_KEYS})
