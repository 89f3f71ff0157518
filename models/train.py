"""Fit a network with Lightning: early stopping, checkpoints, clipping, best weights restored."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from models.classifier_module import ClassifierModule
from models.config import ModelConfig, TrainConfig
from models.data import ragged_column, sequence_loader, series_loader
from models.forecaster_module import ForecasterModule
from models.recurrent import Forecaster, SequenceClassifier
from models.seq2seq import Seq2Seq
from models.seq2seq_module import Seq2SeqModule
from tasks import PreparedData


@dataclass
class FitResult:
    """A trained network and how training went.

    Attributes:
        network: The network with the best validation weights loaded, in eval mode.
        best_score: Best value of the monitored validation metric.
        monitor: Name of that metric.
        epochs: Epochs run before stopping.
        seconds: Wall time of ``Trainer.fit``.
        checkpoint: Path of the best checkpoint.
    """

    network: nn.Module
    best_score: float
    monitor: str
    epochs: int
    seconds: float
    checkpoint: Path


def build_module(
    shape: dict[str, int], model_config: ModelConfig, train_config: TrainConfig
) -> pl.LightningModule:
    """The LightningModule for a network shape (the codec's ``network_shape()``): its kind and sizes."""
    if "target_vocab_size" in shape:
        network = Seq2Seq(model_config, shape["vocab_size"], shape["target_vocab_size"])
        return Seq2SeqModule(network, train_config)
    if "horizon" in shape:
        return ForecasterModule(Forecaster(model_config, shape["input_size"], shape["horizon"]), train_config)
    network = SequenceClassifier(
        model_config,
        num_classes=shape["num_classes"],
        vocab_size=shape.get("vocab_size"),
        input_size=shape.get("input_size"),
    )
    return ClassifierModule(network, shape["num_classes"], train_config)


def save_network(network: nn.Module, path: Path) -> Path:
    """Write the network's weights (a plain state dict, loadable with ``weights_only=True``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return path


def restore_network(shape: dict[str, int], model_config: ModelConfig, weights: Path) -> nn.Module:
    """Rebuild a trained network from the weights ``save_network`` wrote, in eval mode.

    Args:
        shape: The codec's ``network_shape()``.
        model_config: The network settings it was trained with.
        weights: The state-dict file.
    """
    network = build_module(shape, model_config, TrainConfig()).network
    network.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return network.eval()


def build_loaders(prepared: PreparedData, config: TrainConfig) -> tuple[DataLoader, DataLoader]:
    """Training (shuffled) and validation loaders for the prepared splits."""
    train, validation = prepared.splits["train"], prepared.splits["validation"]
    shape = prepared.codec.network_shape()
    if "horizon" in shape:
        train, validation = train.with_format("numpy")[:], validation.with_format("numpy")[:]
        return (
            series_loader(
                train["inputs"], train["targets"], config.batch_size, shuffle=True, seed=config.seed
            ),
            series_loader(validation["inputs"], validation["targets"], 256, shuffle=False),
        )
    column = "input_ids" if "vocab_size" in shape else "inputs"
    targets = (
        (lambda split: ragged_column(split, "target_ids"))
        if "target_vocab_size" in shape
        else (lambda split: split["label"])
    )
    return (
        sequence_loader(
            ragged_column(train, column), targets(train), config.batch_size, shuffle=True, seed=config.seed
        ),
        sequence_loader(ragged_column(validation, column), targets(validation), 256, shuffle=False),
    )


def train(
    prepared: PreparedData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoint_dir: Path,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train a network on the prepared splits and return it with its best validation weights.

    Args:
        prepared: Encoded splits and codec from ``Task.prepare``.
        model_config: Network shape (cell, sizes, pooling...).
        train_config: Optimiser, schedule, clipping, epochs and early-stopping patience.
        checkpoint_dir: Folder for Lightning checkpoints.
        callbacks: Extra Lightning callbacks (for example, experiment tracking).

    Returns:
        The trained network and a summary of the fit.
    """
    # Lightning's banner (accelerators, tips) and an internal deprecation say nothing about this run.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    pl.seed_everything(train_config.seed, workers=True, verbose=False)
    module = build_module(prepared.codec.network_shape(), model_config, train_config)
    network = module.network
    train_loader, val_loader = build_loaders(prepared, train_config)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        monitor=module.monitor,
        mode=module.monitor_mode,
        save_top_k=1,
        filename="best",
    )
    stopper = EarlyStopping(monitor=module.monitor, mode=module.monitor_mode, patience=train_config.patience)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=train_config.max_epochs,
        gradient_clip_val=train_config.gradient_clip_norm or None,
        gradient_clip_algorithm="norm",
        callbacks=[checkpoint, stopper, *(callbacks or [])],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_train_batches=train_config.limit_train_batches,
        num_sanity_val_steps=0,
        default_root_dir=checkpoint_dir,
    )
    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - started
    state: dict[str, Any] = torch.load(checkpoint.best_model_path, weights_only=True, map_location="cpu")
    module.load_state_dict(state["state_dict"])
    network.eval()
    return FitResult(
        network,
        float(checkpoint.best_model_score),
        module.monitor,
        trainer.current_epoch,
        seconds,
        Path(checkpoint.best_model_path),
    )
