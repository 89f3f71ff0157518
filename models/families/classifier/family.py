"""The classifier family: one label per sequence of token ids or real-valued steps (``logits``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
from torch import nn
from torch.utils.data import DataLoader

from models.config import ModelConfig, TrainConfig
from models.data import sequence_loaders
from models.export import ExampleMaker, export_checked, series_batch, token_batch
from models.families.classifier.folded import can_fold, folded_classifier_graph
from models.families.classifier.module import ClassifierModule
from models.families.classifier.network import SequenceClassifier
from models.family import Family
from tasks import PreparedData

GRAPH = "model"  # the codec's one graph
OUTPUT = "logits"


def examples(shape: dict[str, int]) -> ExampleMaker:
    """Example inputs of the network's kind: token ids when it has a vocabulary, else vectors per step."""
    if "vocab_size" in shape:
        return partial(token_batch, shape["vocab_size"])
    return partial(series_batch, shape["input_size"])


class ClassifierFamily(Family):
    """``SequenceClassifier`` trained with cross-entropy, ``val_macro_f1`` picking the best epoch."""

    name = "classifier"
    unused_train_settings = ("loss", "label_smoothing")

    def build_network(self, shape: dict[str, int], model_config: ModelConfig) -> nn.Module:
        """A classifier over token ids (``vocab_size`` in ``shape``) or vectors (``input_size``)."""
        return SequenceClassifier(
            model_config,
            num_classes=shape["num_classes"],
            vocab_size=shape.get("vocab_size"),
            input_size=shape.get("input_size"),
        )

    def build_module(
        self, network: nn.Module, shape: dict[str, int], train_config: TrainConfig
    ) -> pl.LightningModule:
        """A ``ClassifierModule`` with macro metrics over ``shape["num_classes"]``."""
        return ClassifierModule(network, shape["num_classes"], train_config)

    def loaders(self, prepared: PreparedData, train_config: TrainConfig) -> tuple[DataLoader, DataLoader]:
        """Bucketed batches of ``input_ids`` (or ``inputs`` vectors) with their ``label``."""
        column = "input_ids" if "vocab_size" in prepared.codec.network_shape() else "inputs"
        return sequence_loaders(prepared.splits, column, lambda split: split["label"], train_config)

    def export(self, network: nn.Module, directory: Path, shape: dict[str, int], tolerance: float) -> float:
        """Write ``model.onnx``, ``(input_ids | inputs, lengths) -> logits``, and check it against PyTorch.

        One-layer token classifiers get the folded graph (``models.families.classifier.folded``), which
        serves faster; every other classifier is traced. Either goes through the same parity check.
        """
        build = folded_classifier_graph if can_fold(network) else None
        return export_checked(network, directory / f"{GRAPH}.onnx", examples(shape), OUTPUT, tolerance, build)
