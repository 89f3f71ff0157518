"""The task contract: what every seqops task provides to training, evaluation and serving.

A task answers *what the problem is*. It never imports torch, Lightning, Prefect or MLflow,
so the same encoding and decoding code runs in training, in evaluation and in a batch job
on a machine without PyTorch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.common.assets import build_codec, read_asset
from tasks.common.hooks import Artifact, Evaluation, NoOptions, WholeFileReader, check_options


def lazy_module(name: str) -> ModuleType:
    """``name``, imported on first use: serving a model then never pays for ``datasets`` or ``pandas``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


datasets = lazy_module("datasets")
GraphRunner = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


def declared_feeds(feeds: dict[str, np.ndarray], inputs: list[str]) -> dict[str, np.ndarray]:
    """The feeds a graph declares among its ``inputs``.

    A search may send an input that graphs exported before it do not take (translation's
    ``candidates``); such a graph still runs, and the search reads the outputs it does give.
    """
    return {name: feeds[name] for name in inputs if name in feeds}


class DataConfig(BaseModel):
    """Settings shared by every task's data preparation.

    Attributes:
        data_dir: Folder holding local copies of the data sets (such as ``../shared/data``).
        cache_dir: Where prepared splits are cached, keyed by source and parameters.
        limit: Keep only the first N rows of each split (tests, smoke runs).
        seed: Seed for any shuffling or splitting.
    """

    model_config = ConfigDict(extra="forbid")

    data_dir: Path | None = None
    cache_dir: Path = Path(".seqops/cache")
    limit: int | None = None
    seed: int = 42


@dataclass
class PreparedData:
    """Encoded splits plus what serving needs to encode new inputs the same way.

    Attributes:
        splits: ``datasets.DatasetDict`` with ``train``, ``validation`` and ``test``.
        codec: The fitted encoder/decoder (tokenizer, labels, scaler...).
        source: Human-readable description of where the data came from (lineage).
        fingerprint: Hash of the source content and preparation parameters.
        stats: Counts worth logging (rows per split, dropped rows, vocabulary size...).
    """

    splits: Any
    codec: Codec
    source: str
    fingerprint: str
    stats: dict[str, float] = field(default_factory=dict)


class Codec(ABC):
    """Turns raw records into model inputs and model outputs into predictions, without torch.

    Attributes:
        graphs: The ONNX graphs the model is exported as (``<name>.onnx`` in a bundle).
        unknown_id: The tokenizer's unknown-token id (token inputs), for input profiles.
    """

    graphs: ClassVar[tuple[str, ...]] = ("model",)
    unknown_id: ClassVar[int | None] = None

    @abstractmethod
    def parse(self, row: dict[str, Any]) -> Any:
        """Validate one raw input row and return the item to encode.

        Raises:
            InvalidRow: With the reason, when the row cannot be predicted.
        """

    @abstractmethod
    def encode(self, items: list[Any]) -> dict[str, np.ndarray]:
        """Encode parsed items into the model's named input arrays."""

    def item_length(self, item: Any) -> int:
        """Size of a parsed item for length bucketing (characters, steps or tokens)."""
        return len(item)

    def infer(self, run: GraphRunner, feeds: dict[str, np.ndarray], **options: Any) -> dict[str, Any]:
        """Run the model's graphs on encoded inputs; one pass of the single graph unless overridden.

        Args:
            run: Runs a named graph on named arrays (onnxruntime in serving, PyTorch in checks).
            feeds: What ``encode`` returned.
            **options: Inference options a task understands (such as ``beam_width``).
        """
        return run("model", feeds)

    @abstractmethod
    def decode(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Turn the model's named outputs into one prediction record per item."""

    @abstractmethod
    def network_shape(self) -> dict[str, int]:
        """Sizes the network must have: ``num_classes`` and ``vocab_size`` or ``input_size``."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the codec's assets (tokenizer, label names...) into a model bundle folder."""


class JsonCodec(Codec):
    """A codec whose assets are plain settings: saved as ``codec.json``, loaded back into ``__init__``.

    Attributes:
        settings_schema: The settings' types (a ``TypedDict``), checked when a bundle is loaded.
    """

    settings_schema: ClassVar[Any] = dict[str, Any]

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this codec."""

    def save(self, directory: Path) -> None:
        """Write ``settings()`` as ``codec.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "codec.json").write_text(json.dumps(self.settings(), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a codec from the ``codec.json`` written by ``save``.

        Raises:
            BundleError: Naming ``codec.json`` (and the field) when it is missing, unreadable or mistyped.
        """
        settings = read_asset(directory, "codec.json", cls.settings_schema)
        return build_codec(cls, directory / "codec.json", **settings)


class Task(ABC):
    """A registered ML task: data sources, preparation, codec and metrics, and hooks for what differs.

    The generic layers call the hooks and never ask which task they hold: ``diagnostics`` (plots and
    tables logged with a trained model), ``summary_metrics`` (the columns of result tables),
    ``readers`` (whole-file inputs of ``seqops predict``), ``inference_options`` (settings a user
    may change at prediction time, checked before any work) and ``search_space`` (what
    ``seqops tune`` searches).
    """

    name: ClassVar[str]
    # The network family that learns it (``models.families``): classifier, forecaster, seq2seq...
    family: ClassVar[str]
    config_model: ClassVar[type[DataConfig]] = DataConfig
    promotion_metric: ClassVar[str]
    promotion_direction: ClassVar[Literal["max", "min"]]
    # Points in one unit of the promotion metric, for tolerances such as the int8 gate's (BLEU: 1).
    metric_points: ClassVar[float] = 100.0
    # Extra test-split evaluations with other inference options, reported as ``<metric>_<name>``.
    evaluation_variants: ClassVar[dict[str, dict[str, Any]]] = {}
    # Test metrics in summary tables, in order (the int8 promotion metric is added); empty: all of them.
    summary_metrics: ClassVar[tuple[str, ...]] = ()
    readers: ClassVar[dict[str, WholeFileReader]] = {}
    inference_options: ClassVar[type[BaseModel]] = NoOptions
    # What ``seqops tune`` searches: ``section.field`` (data, model or train) -> ``{low, high, log}``
    # or ``{choices}``. A profile's ``search_space`` narrows, widens or removes entries.
    search_space: ClassVar[dict[str, dict[str, Any]]] = {
        "model.hidden_size": {"low": 32, "high": 256, "log": True},
        "model.dropout": {"low": 0.0, "high": 0.5},
        "train.learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
    }

    def config(self, **values: Any) -> DataConfig:
        """Validate data settings for this task; unknown or bad fields raise naming the field."""
        return self.config_model(**values)

    @abstractmethod
    def prepare(self, config: DataConfig) -> PreparedData:
        """Load, clean, split and encode the data, using the on-disk cache when it is fresh."""

    @abstractmethod
    def load_codec(self, directory: Path) -> Codec:
        """Load the codec saved in a model bundle folder."""

    @abstractmethod
    def metrics(self, predictions: list[dict[str, Any]], references: Any) -> dict[str, float]:
        """Score decoded predictions against reference targets."""

    @abstractmethod
    def references(self, split: Any, codec: Codec) -> tuple[list[dict[str, Any]], Any]:
        """Raw input rows of a split, as serving would see them, and what ``metrics`` scores them against."""

    def diagnostics(self, evaluation: Evaluation) -> list[Artifact]:
        """Plots and tables that explain a trained model's test predictions (logged with its run)."""
        return []

    def baselines(self, prepared: PreparedData) -> dict[str, Callable[[], dict[str, float]]]:
        """Classical models scored beside the networks on the same splits (never promoted or served).

        Returns:
            Per baseline name, a function returning its test metrics (computed by ``metrics``), or
            raising ``BaselineSkipped`` with the reason it cannot run on this data.
        """
        return {}

    def training_samples(self, run: GraphRunner, codec: Codec) -> dict[str, str]:
        """Texts that show how training goes, logged after every epoch (none unless a task has some).

        Args:
            run: Runs the network being trained as the exported graphs would (``Family.torch_runner``).
            codec: The task's codec.

        Returns:
            Text per name (the artifact ``samples/epoch-<n>-<name>.txt`` of the run).
        """
        return {}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Typed inference options, checked against ``inference_options``.

        Raises:
            InvalidOptions: Naming the option and what is wrong with it.
        """
        return check_options(self.inference_options, options, self.name)

    def is_better(self, candidate: float, incumbent: float | None) -> bool:
        """Whether ``candidate`` beats ``incumbent`` on the promotion metric."""
        if incumbent is None:
            return True
        return candidate > incumbent if self.promotion_direction == "max" else candidate < incumbent


def fingerprint(*parts: Any) -> str:
    """Stable short hash of files (by content) and JSON-able parameters."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path) and part.is_file():
            digest.update(part.read_bytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def load_prepared(cache: Path, task: Task, source: str, key: str) -> PreparedData | None:
    """Prepared splits from the on-disk cache, or ``None`` when this key was never built."""
    if not (cache / "codec.json").exists():
        return None

    stats = json.loads((cache / "stats.json").read_text())
    return PreparedData(
        datasets.load_from_disk(str(cache / "splits")), task.load_codec(cache), source, key, stats
    )


def save_prepared(prepared: PreparedData, cache: Path) -> PreparedData:
    """Write splits, stats and codec assets so that the next ``prepare`` with the same key is instant.

    They are written to a folder of this process's own, then renamed into place: processes preparing
    the same data at once (parallel tuning trials) never write into one folder, and a reader never
    sees a half-written cache. The first to finish wins; the others' copies are dropped.
    """
    staging = cache.with_name(f".{cache.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    prepared.splits.save_to_disk(str(staging / "splits"))
    (staging / "stats.json").write_text(json.dumps(prepared.stats))
    prepared.codec.save(staging)
    try:
        staging.rename(cache)
    except OSError:  # another process's copy is in place already
        shutil.rmtree(staging, ignore_errors=True)
    return prepared
