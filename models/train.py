"""Fit a network with Lightning: early stopping, checkpoints, clipping, best weights restored.

Generic over network families (``models.family``): the family named by the task builds the network,
its LightningModule and its loaders; this module only runs and checkpoints the fit.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.strategies import DDPStrategy
from torch import nn

from models.config import ModelConfig, TrainConfig
from models.distributed import WORKER_TIMEOUT, rank, rank_zero, shard, worker_processes
from models.family import get_family
from models.hardware import accelerator, threads_per_process
from models.resume import resume_point
from tasks import PreparedData


@dataclass
class FitResult:
    """A trained network and how training went.

    Attributes:
        network: The network with the best validation weights loaded, in eval mode.
        family: The network family that built it (what exports or restores it).
        best_score: Best value of the monitored validation metric.
        monitor: Name of that metric.
        monitor_mode: Whether it is better ``max`` or ``min``.
        epochs: Epochs run before stopping.
        seconds: Wall time of ``Trainer.fit``.
        checkpoint: Path of the best checkpoint.
        resumed_from_epoch: Epochs already done in the ``last.ckpt`` training resumed from (the index of
            the first epoch this fit ran), or ``None`` for a fresh start. ``seconds`` counts this fit only.
    """

    network: nn.Module
    family: str
    best_score: float
    monitor: str
    monitor_mode: str
    epochs: int
    seconds: float
    checkpoint: Path
    resumed_from_epoch: int | None = None


def save_network(network: nn.Module, path: Path) -> Path:
    """Write the network's weights (a plain state dict, loadable with ``weights_only=True``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return path


def restore_network(
    family: str, shape: dict[str, int], model_config: ModelConfig, weights: Path
) -> nn.Module:
    """Rebuild a trained network from the weights ``save_network`` wrote, in eval mode.

    Args:
        family: The network family that built it (the task's ``family``).
        shape: The codec's ``network_shape()``.
        model_config: The network settings it was trained with.
        weights: The state-dict file.

    Returns:
        The network with those weights, in eval mode.
    """
    network = get_family(family).build_network(shape, model_config)
    network.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return network.eval()


@dataclass(frozen=True)
class FitSpec:
    """Everything that defines a fit, picklable: what every data-parallel rank rebuilds it from.

    Attributes:
        family: The network family that learns the task.
        prepared: Encoded splits and codec.
        model_config: Network settings.
        train_config: Training settings.
        checkpoint_dir: Folder of the checkpoints (written by rank 0).
        resume: The ``last.ckpt`` to resume from, or ``None`` for a fresh start.
    """

    family: str
    prepared: PreparedData
    model_config: ModelConfig
    train_config: TrainConfig
    checkpoint_dir: Path
    resume: Path | None = None


@dataclass
class Fit:
    """A fit ready to run: the network, its module and loaders, the Trainer and its best checkpoint."""

    network: nn.Module
    module: pl.LightningModule
    loaders: tuple[Any, Any]
    trainer: pl.Trainer
    best: ModelCheckpoint

    def run(self, resume: Path | None) -> None:
        """Train (from ``resume`` if given), keeping Lightning's state-dict-only loading."""
        self.trainer.fit(self.module, *self.loaders, ckpt_path=resume, weights_only=True)


def build_fit(spec: FitSpec, callbacks: list[Callback] | None = None) -> Fit:
    """Seed, build the network, its module, loaders and Trainer for this process's rank.

    Every rank builds the same network from the same seed; under data parallelism each trains on its
    own share of the training batches, and validates on all of them (the same scores on every rank).
    """
    config = spec.train_config
    chosen = get_family(spec.family)  # an unknown family fails before any work
    if config.num_threads or config.distributed:
        torch.set_num_threads(threads_per_process(config))
    pl.seed_everything(config.seed, workers=True, verbose=False)
    # The network first: its weights are the first draws after the seed, whatever the family.
    shape = spec.prepared.codec.network_shape()
    network = chosen.build_network(shape, spec.model_config)
    module = chosen.build_module(network, shape, config)
    train_loader, val_loader = chosen.loaders(spec.prepared, config)
    if config.distributed:
        train_loader = shard(train_loader, rank(), config.devices)
    best = ModelCheckpoint(
        dirpath=spec.checkpoint_dir,
        monitor=module.monitor,
        mode=module.monitor_mode,
        save_top_k=1,
        filename="best",
    )
    # ``save_last`` would copy only the epochs that improve the best; resuming needs every epoch.
    last = ModelCheckpoint(dirpath=spec.checkpoint_dir, filename="last", enable_version_counter=False)
    stopper = EarlyStopping(monitor=module.monitor, mode=module.monitor_mode, patience=config.patience)
    strategy: Any = (
        DDPStrategy(timeout=WORKER_TIMEOUT, find_unused_parameters=False) if config.distributed else "auto"
    )
    trainer = pl.Trainer(
        accelerator=accelerator(config),
        devices=config.devices,
        strategy=strategy,
        precision=config.precision,
        use_distributed_sampler=False,  # ``shard`` splits the bucketed batches; validation stays whole
        max_epochs=config.max_epochs,
        gradient_clip_val=config.gradient_clip_norm or None,
        gradient_clip_algorithm="norm",
        callbacks=[best, last, stopper, *(callbacks or [])],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
        num_sanity_val_steps=0,
        default_root_dir=spec.checkpoint_dir,
    )
    return Fit(network, module, (train_loader, val_loader), trainer, best)


def quiet_lightning() -> None:
    """Silence what says nothing about a run: Lightning's banner and tips, warnings it cannot act on."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The folder holds the lock file, and the checkpoints it is meant to resume from.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def train(
    family: str,
    prepared: PreparedData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoint_dir: Path,
    callbacks: list[Callback] | None = None,
    on_resume: Callable[[int, Path], None] | None = None,
) -> FitResult:
    """Train a network on the prepared splits and return it with its best validation weights.

    If ``checkpoint_dir`` holds a ``last.ckpt`` (written after every epoch) that fits this network,
    training resumes from it: weights, optimiser, schedule, early stopping, best checkpoint and epoch.
    The checkpoint is loaded with ``weights_only=True``; one that cannot be resumed is logged and
    training starts afresh. The caller makes sure the folder belongs to this training only.

    With ``train_config.devices`` > 1 (or ``strategy: ddp``) this process trains as rank 0 of a
    data-parallel fit (``models.distributed``): only it runs ``callbacks`` and writes checkpoints.

    Args:
        family: The network family that learns the task (the task's ``family``).
        prepared: Encoded splits and codec from ``Task.prepare``.
        model_config: Network shape (cell, sizes, pooling...).
        train_config: Optimiser, schedule, clipping, epochs, patience and hardware.
        checkpoint_dir: Folder for Lightning checkpoints.
        callbacks: Extra Lightning callbacks (for example, experiment tracking).
        on_resume: Called with the epoch training resumes at and the checkpoint, before it resumes.

    Returns:
        The trained network (on the CPU, in eval mode) and a summary of the fit.

    Raises:
        models.distributed.DistributedTrainingError: If a data-parallel rank failed.
    """
    quiet_lightning()
    spec = FitSpec(family, prepared, model_config, train_config, checkpoint_dir)
    with ExitStack() as data_parallel:
        if train_config.distributed:
            variables = data_parallel.enter_context(rank_zero(train_config.devices))
        fit = build_fit(spec, callbacks)
        resume = resume_point(checkpoint_dir, fit.module)
        if resume and on_resume:
            on_resume(resume[1], resume[0])
        if train_config.distributed:
            data_parallel.enter_context(
                worker_processes(replace(spec, resume=resume and resume[0]), variables)
            )
        started = time.perf_counter()
        fit.run(resume[0] if resume else None)
        seconds = time.perf_counter() - started
    best = fit.best
    state: dict[str, Any] = torch.load(best.best_model_path, weights_only=True, map_location="cpu")
    network = fit.network.cpu()
    fit.module.cpu().load_state_dict(state["state_dict"])
    return FitResult(
        network=network.eval(),
        family=family,
        best_score=float(best.best_model_score),
        monitor=fit.module.monitor,
        monitor_mode=fit.module.monitor_mode,
        epochs=fit.trainer.current_epoch,
        seconds=seconds,
        checkpoint=Path(best.best_model_path),
        resumed_from_epoch=resume[1] if resume else None,
    )
