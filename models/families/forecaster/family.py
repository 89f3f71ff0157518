"""The forecaster family: every step of a horizon at once from a window of real-valued history."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
from torch import nn
from torch.utils.data import DataLoader

from models.config import ModelConfig, TrainConfig
from models.data import VALIDATION_BATCH_SIZE, series_loader
from models.export import export_checked, series_batch
from models.families.forecaster.module import ForecasterModule
from models.families.forecaster.network import Forecaster
from models.family import Family
from tasks import PreparedData

GRAPH = "model"  # the codec's one graph
OUTPUT = "forecast"


class ForecasterFamily(Family):
    """``Forecaster`` trained with MSE or MAE on the scaled target, ``val_mse`` picking the best epoch."""

    name = "forecaster"
    unused_train_settings = ("label_smoothing",)

    def build_network(self, shape: dict[str, int], model_config: ModelConfig) -> nn.Module:
        """A forecaster of ``shape["horizon"]`` steps over ``shape["input_size"]`` columns."""
        return Forecaster(model_config, shape["input_size"], shape["horizon"])

    def build_module(
        self, network: nn.Module, shape: dict[str, int], train_config: TrainConfig
    ) -> pl.LightningModule:
        """A ``ForecasterModule`` with the configured regression loss."""
        return ForecasterModule(network, train_config)

    def loaders(self, prepared: PreparedData, train_config: TrainConfig) -> tuple[DataLoader, DataLoader]:
        """Full-length windows: ``inputs`` (lookback, columns) and ``targets`` (horizon) per row."""
        train = prepared.splits["train"].with_format("numpy")[:]
        validation = prepared.splits["validation"].with_format("numpy")[:]
        batch_size, seed = train_config.batch_size, train_config.seed
        return (
            series_loader(train["inputs"], train["targets"], batch_size, shuffle=True, seed=seed),
            series_loader(validation["inputs"], validation["targets"], VALIDATION_BATCH_SIZE, shuffle=False),
        )

    def export(self, network: nn.Module, directory: Path, shape: dict[str, int], tolerance: float) -> float:
        """Write ``model.onnx``, ``(inputs, lengths) -> forecast``, traced, and check it against PyTorch."""
        examples = partial(series_batch, shape["input_size"])  # (batch, length, seed) -> inputs, lengths
        return export_checked(network, directory / f"{GRAPH}.onnx", examples, OUTPUT, tolerance)
