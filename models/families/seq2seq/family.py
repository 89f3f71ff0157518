"""The seq2seq family: a target sentence per source sentence, served as an encoder and a decoder step."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
from torch import nn
from torch.utils.data import DataLoader

from models.config import ModelConfig, TrainConfig
from models.data import ragged_column, sequence_loaders
from models.families.seq2seq.export import export_seq2seq_checked, torch_runner
from models.families.seq2seq.module import Seq2SeqModule
from models.families.seq2seq.network import Seq2Seq
from models.family import Family
from tasks import PreparedData
from tasks.common.base import GraphRunner


class Seq2SeqFamily(Family):
    """Attention ``Seq2Seq`` trained with teacher forcing, ``val_loss`` picking the best epoch."""

    name = "seq2seq"
    unused_train_settings = ("loss",)

    def build_network(self, shape: dict[str, int], model_config: ModelConfig) -> nn.Module:
        """An encoder-decoder from ``shape["vocab_size"]`` source to ``shape["target_vocab_size"]`` ids."""
        return Seq2Seq(model_config, shape["vocab_size"], shape["target_vocab_size"])

    def build_module(
        self, network: nn.Module, shape: dict[str, int], train_config: TrainConfig
    ) -> pl.LightningModule:
        """A ``Seq2SeqModule`` (label smoothing from ``train_config``)."""
        return Seq2SeqModule(network, train_config)

    def loaders(self, prepared: PreparedData, train_config: TrainConfig) -> tuple[DataLoader, DataLoader]:
        """Bucketed batches of source ``input_ids`` with their ``target_ids`` (``[BOS] ... [EOS]``)."""
        targets = partial(ragged_column, name="target_ids")
        return sequence_loaders(prepared.splits, "input_ids", targets, train_config)

    def export(self, network: nn.Module, directory: Path, shape: dict[str, int], tolerance: float) -> float:
        """Write ``encoder.onnx`` and ``decoder_step.onnx`` and check them on greedy and beam decodes."""
        return export_seq2seq_checked(network, directory, shape, tolerance)

    def torch_runner(self, network: nn.Module) -> GraphRunner:
        """The ``encoder`` and ``decoder_step`` graphs, run by the PyTorch network (eval mode, no grad)."""
        return torch_runner(network)
