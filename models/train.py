"""Fit a network with Lightning: early stopping, checkpoints, clipping, best weights restored.

Generic over network families (``models.family``): the family named by the task builds the network,
its LightningModule and its loaders; this module only runs and checkpoints the fit.
"""

from __future__ import annotations

import logging
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn

from models.config import ModelConfig, TrainConfig
from models.family import get_family
from tasks import PreparedData

LAST_CHECKPOINT = "last.ckpt"
log = logging.getLogger(__name__)


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

    Args:
        family: The network family that learns the task (the task's ``family``).
        prepared: Encoded splits and codec from ``Task.prepare``.
        model_config: Network shape (cell, sizes, pooling...).
        train_config: Optimiser, schedule, clipping, epochs and early-stopping patience.
        checkpoint_dir: Folder for Lightning checkpoints.
        callbacks: Extra Lightning callbacks (for example, experiment tracking).
        on_resume: Called with the epoch training resumes at and the checkpoint, before it resumes.

    Returns:
        The trained network and a summary of the fit.
    """
    # Lightning's banner (accelerators, tips) and an internal deprecation say nothing about this run.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The folder holds the lock file, and the checkpoints it is meant to resume from.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    chosen = get_family(family)  # an unknown family fails before any work
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    pl.seed_everything(train_config.seed, workers=True, verbose=False)
    # The network first: its weights are the first draws after the seed, whatever the family.
    shape = prepared.codec.network_shape()
    network = chosen.build_network(shape, model_config)
    module = chosen.build_module(network, shape, train_config)
    train_loader, val_loader = chosen.loaders(prepared, train_config)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        monitor=module.monitor,
        mode=module.monitor_mode,
        save_top_k=1,
        filename="best",
    )
    # ``save_last`` would copy only the epochs that improve the best; resuming needs every epoch.
    last = ModelCheckpoint(dirpath=checkpoint_dir, filename="last", enable_version_counter=False)
    stopper = EarlyStopping(monitor=module.monitor, mode=module.monitor_mode, patience=train_config.patience)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=train_config.max_epochs,
        gradient_clip_val=train_config.gradient_clip_norm or None,
        gradient_clip_algorithm="norm",
        callbacks=[checkpoint, last, stopper, *(callbacks or [])],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_train_batches=train_config.limit_train_batches,
        num_sanity_val_steps=0,
        default_root_dir=checkpoint_dir,
    )
    resume = resume_point(checkpoint_dir, module)
    if resume and on_resume:
        on_resume(resume[1], resume[0])
    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader, ckpt_path=resume[0] if resume else None, weights_only=True)
    seconds = time.perf_counter() - started
    state: dict[str, Any] = torch.load(checkpoint.best_model_path, weights_only=True, map_location="cpu")
    module.load_state_dict(state["state_dict"])
    network.eval()
    return FitResult(
        network=network,
        family=family,
        best_score=float(checkpoint.best_model_score),
        monitor=module.monitor,
        monitor_mode=module.monitor_mode,
        epochs=trainer.current_epoch,
        seconds=seconds,
        checkpoint=Path(checkpoint.best_model_path),
        resumed_from_epoch=resume[1] if resume else None,
    )


def resume_point(checkpoint_dir: Path, module: pl.LightningModule) -> tuple[Path, int] | None:
    """The ``last.ckpt`` in a folder to resume ``module``'s training from and its epoch, if usable.

    Loaded here as Lightning will load it (``weights_only=True``), so that a checkpoint truncated by a
    kill, written for another network shape or in another folder, or holding objects that
    ``weights_only`` refuses, is found before ``fit``. Such a file is logged and removed with the other
    checkpoints, so that the fresh start does not write ``best-v1.ckpt`` beside a stale ``best.ckpt``.

    Returns:
        The checkpoint and the epoch training resumes at (the number of epochs it finished), or
        ``None`` to start from scratch.
    """
    last = checkpoint_dir / LAST_CHECKPOINT
    if not last.is_file():
        return None
    try:
        state = torch.load(last, weights_only=True, map_location="cpu")
        if {k: v.shape for k, v in state["state_dict"].items()} != {
            k: v.shape for k, v in module.state_dict().items()
        }:
            raise ValueError("its weights do not fit this network")
        if not {"loops", "optimizer_states", "callbacks"} <= state.keys():
            raise ValueError("it holds weights but no training state")
        # ModelCheckpoint restores where its best checkpoint is only if it was written in this folder.
        for saver in (c for c in state["callbacks"].values() if "best_model_path" in c):
            if saver["dirpath"] != str(checkpoint_dir.resolve()):
                raise ValueError(f"it was written in {saver['dirpath']}")
            if not Path(saver["best_model_path"]).is_file():
                raise ValueError(f"its checkpoint {saver['best_model_path']} is gone")
        epoch = int(state["epoch"]) + 1
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        pickle.UnpicklingError,
    ) as error:
        log.warning("cannot resume from %s (%r): training from scratch", last, error)
        for stale in checkpoint_dir.glob("*.ckpt"):
            stale.unlink()
        return None
    return last, epoch
