"""The language-model family: next-token logits over a window; served one token at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.config import ModelConfig, TrainConfig
from models.data import VALIDATION_BATCH_SIZE
from models.families.language_model.export import export_language_model_checked, torch_runner
from models.families.language_model.module import LanguageModelModule
from models.families.language_model.network import LanguageModel
from models.family import Family
from tasks import PreparedData
from tasks.common.base import GraphRunner


class LanguageModelOptions(BaseModel):
    """A language model's own settings (``model.options`` in a profile).

    Attributes:
        tie_weights: Share the embedding matrix with the output layer.
    """

    model_config = ConfigDict(extra="forbid")

    tie_weights: bool = False


class LanguageModelFamily(Family):
    """``LanguageModel`` trained with cross-entropy on fixed windows, ``val_loss`` picking the best epoch."""

    name = "language_model"
    unused_train_settings = ("loss",)
    options_model = LanguageModelOptions

    def build_network(self, shape: dict[str, int], model_config: ModelConfig) -> nn.Module:
        """A language model over ``shape["vocab_size"]`` tokens."""
        options = self.options(model_config)
        return LanguageModel(model_config, shape["vocab_size"], tie_weights=options.tie_weights)

    def build_module(
        self, network: nn.Module, shape: dict[str, int], train_config: TrainConfig
    ) -> pl.LightningModule:
        """A ``LanguageModelModule``."""
        return LanguageModelModule(network, train_config)

    def loaders(self, prepared: PreparedData, train_config: TrainConfig) -> tuple[DataLoader, DataLoader]:
        """Windows of ``input_ids`` (``window + 1`` tokens): shuffled for training, in order to validate."""
        train, validation = (
            TensorDataset(
                torch.from_numpy(np.stack(prepared.splits[split].with_format("numpy")["input_ids"]))
            )
            for split in ("train", "validation")
        )
        generator = torch.Generator().manual_seed(train_config.seed)
        return (
            DataLoader(train, batch_size=train_config.batch_size, shuffle=True, generator=generator),
            DataLoader(validation, batch_size=VALIDATION_BATCH_SIZE),
        )

    def export(self, network: nn.Module, directory: Path, shape: dict[str, int], tolerance: float) -> float:
        """Write ``start.onnx`` and ``step.onnx`` and check them on a greedy rollout."""
        return export_language_model_checked(network, directory, shape["vocab_size"], tolerance)

    def torch_runner(self, network: nn.Module) -> GraphRunner:
        """The ``start`` and ``step`` graphs, run by the PyTorch network (eval mode, no gradients)."""
        return torch_runner(network)
