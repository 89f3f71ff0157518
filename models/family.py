"""Network families: what learns a task, found by the name the task gives (``Task.family``).

A family owns everything about one kind of network: the network itself, the LightningModule that
trains it, the loaders that feed it the prepared splits, and its ONNX export with the parity check.
The generic trainer and exporter only call these hooks, so a new kind of network is one package
registered under the ``seqops.families`` entry points, never a branch in generic code::

    [project.entry-points."seqops.families"]
    my_family = "my_package.my_family:FAMILY"
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
from pydantic import BaseModel
from torch import nn
from torch.utils.data import DataLoader

from models.config import ModelConfig, TrainConfig
from tasks import PreparedData
from tasks.common.base import GraphRunner
from tasks.common.hooks import NoOptions
from tasks.common.plugins import PluginRegistry


class Family(ABC):
    """One kind of network, from its codec's shape to checked ONNX graphs.

    Attributes:
        name: The name tasks give as their ``family`` and the entry point is registered under.
        options_model: The family's own network settings (``model.options`` in a profile), checked when
            the profile is loaded.
        unused_train_settings: ``TrainConfig`` fields the family ignores (a family without regression has no
            ``loss``), left out of the parameters a run logs.
    """

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    unused_train_settings: ClassVar[tuple[str, ...]] = ()

    def options(self, model_config: ModelConfig) -> Any:
        """The family's own settings of ``model_config`` (``model.options``), typed.

        Raises:
            pydantic.ValidationError: Naming the option that is unknown or invalid.
        """
        return self.options_model.model_validate(model_config.options)

    def torch_runner(self, network: nn.Module) -> GraphRunner:
        """``run(graph, feeds)`` backed by the PyTorch network, as its exported graphs would run.

        What a task's ``training_samples`` hook drives while the network trains.

        Raises:
            NotImplementedError: For a family whose graphs are not meant to be driven step by step.
        """
        raise NotImplementedError(f"the {self.name} family has no graph runner for PyTorch")

    @abstractmethod
    def build_network(self, shape: dict[str, int], model_config: ModelConfig) -> nn.Module:
        """A freshly initialised network.

        Args:
            shape: The codec's ``network_shape()`` (vocabulary or input size, classes, horizon...).
            model_config: Cell, sizes, layers, pooling and dropout.

        Returns:
            The network, its parameters drawn from torch's global generator.
        """

    @abstractmethod
    def build_module(
        self, network: nn.Module, shape: dict[str, int], train_config: TrainConfig
    ) -> pl.LightningModule:
        """The LightningModule that trains ``network``.

        Args:
            network: What ``build_network`` returned.
            shape: The codec's ``network_shape()``.
            train_config: Optimiser, schedule and loss settings.

        Returns:
            A module holding ``network`` as ``.network``, with the validation metric that picks the best
            epoch as ``.monitor`` and its direction (``min`` or ``max``) as ``.monitor_mode``.
        """

    @abstractmethod
    def loaders(self, prepared: PreparedData, train_config: TrainConfig) -> tuple[DataLoader, DataLoader]:
        """Training (shuffled with ``train_config.seed``) and validation loaders of the prepared splits.

        Args:
            prepared: Encoded splits and codec from ``Task.prepare``.
            train_config: Batch size and seed.

        Returns:
            The training and the validation loader, yielding what ``build_module``'s module trains on.
        """

    @abstractmethod
    def export(self, network: nn.Module, directory: Path, shape: dict[str, int], tolerance: float) -> float:
        """Write the ONNX graphs the task's codec runs and check them against PyTorch.

        Args:
            network: The trained network.
            directory: Folder for the ``<graph>.onnx`` files (created if missing).
            shape: The codec's ``network_shape()``.
            tolerance: Largest allowed difference between PyTorch and onnxruntime.

        Returns:
            The parity error, at most ``tolerance``.

        Raises:
            models.export.ParityError: If a graph disagrees with PyTorch or onnxruntime cannot run it at
                shapes unseen at export; the graphs written are removed.
        """


FAMILIES: PluginRegistry[Family] = PluginRegistry(
    "seqops.families", "network family", Family, "models.families", "FAMILY"
)


def get_family(name: str) -> Family:
    """The network family registered as ``name``.

    Raises:
        tasks.common.plugins.PluginError: If no installed package registers ``name`` (the message lists
            the registered families).
    """
    return FAMILIES.get(name)


def family_names() -> list[str]:
    """Every registered family name, sorted."""
    return FAMILIES.names()
