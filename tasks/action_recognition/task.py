"""Action recognition: classify a multichannel motion sequence (NATOPS gestures by default).

Data comes in the UEA multivariate formats (ARFF or ``.ts``): a user's files, a data folder such
as ``../shared/data/natops``, aeon's UEA/UCR loader by name (downloads, for users with network),
or aeon's bundled ``BasicMotions`` as the offline default. Sequences may differ in length; they
are padded at encode time and the model reads their lengths. Channels are z-scored with statistics
fitted on the training split only, and those statistics ship with the model.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from tasks.action_recognition.baseline import minirocket, nearest_neighbour_dtw
from tasks.action_recognition.codec import ActionCodec
from tasks.action_recognition.sequences import clean, label_order, sequence_table, stratified_holdout
from tasks.common.base import (
    DataConfig,
    PreparedData,
    datasets,
    fingerprint,
    load_prepared,
    save_prepared,
)
from tasks.common.classification import ClassificationTask, classification_scores
from tasks.common.errors import DataSourceError
from tasks.common.sources import RawSplit, aeon_bundled, first_available, load_with_aeon, read_uea_file

CACHE_VERSION = 1
OFFLINE_DEFAULT = "BasicMotions"
# Display names of the gestures, from the UEA archive's description of NATOPS.
KNOWN_CLASS_NAMES = {
    "NATOPS": {
        "1.0": "I have command",
        "2.0": "All clear",
        "3.0": "Not clear",
        "4.0": "Spread wings",
        "5.0": "Fold wings",
        "6.0": "Lock wings",
    }
}


class ActionRecognitionConfig(DataConfig):
    """Data settings for action recognition.

    Attributes:
        dataset: UEA/UCR data set name: the folder ``<data_dir>/<name lower-cased>/`` holding
            ``<name>_TRAIN`` and ``<name>_TEST`` (``.arff`` or ``.ts``), or the name aeon loads.
        train_file: A user's training file (``.arff`` or ``.ts``); needs ``test_file``.
        test_file: The matching test file.
        download: Let aeon download ``dataset`` (network) when no local copy exists.
        validation_fraction: Share of each training class held out for validation.
        class_names: Display name per raw label; known data sets (NATOPS) have theirs built in.
        max_length: Longest sequence (time steps) the served model accepts; longer rows are errors.
    """

    dataset: str = "NATOPS"
    train_file: Path | None = None
    test_file: Path | None = None
    download: bool = False
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    class_names: dict[str, str] | None = None
    max_length: int = Field(5000, ge=1)


class ActionRecognition(ClassificationTask):
    """Multiclass classification of multichannel sequences of any length."""

    name = "action_recognition"
    config_model = ActionRecognitionConfig
    search_space = ClassificationTask.search_space | {
        "model.embedding_dim": {"low": 16, "high": 128, "log": True},
        "model.hidden_size": {"low": 32, "high": 256, "log": True},
        "model.dropout": {"low": 0.0, "high": 0.5},
        "train.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
        "train.batch_size": {"choices": [8, 16, 32]},
    }

    def _sources(self, config: ActionRecognitionConfig) -> list[tuple[str, Any]]:
        def user_files() -> dict[str, RawSplit] | None:
            if config.train_file is None:
                return None
            if config.test_file is None:
                raise DataSourceError("train_file is set but test_file is not; set both")
            return {"train": read_uea_file(config.train_file), "test": read_uea_file(config.test_file)}

        def data_dir() -> dict[str, RawSplit] | None:
            folder = config.data_dir / config.dataset.lower() if config.data_dir else None
            if folder is None or not folder.is_dir():
                return None
            found = {}
            for split in ("train", "test"):
                files = sorted(folder.glob(f"{config.dataset}_{split.upper()}.*"))
                uea = [f for f in files if f.suffix.lower() in {".arff", ".ts"}]
                if not uea:
                    raise DataSourceError(f"{folder} has no {config.dataset}_{split.upper()}.arff or .ts")
                found[split] = read_uea_file(uea[0])
            return found

        bundled = aeon_bundled()
        return [
            (f"files {config.train_file}, {config.test_file}", user_files),
            (f"data_dir {config.data_dir}/{config.dataset.lower()}", data_dir),
            (
                f"aeon bundled {config.dataset}",
                lambda: load_with_aeon(config.dataset) if config.dataset in bundled else None,
            ),
            (
                f"aeon download {config.dataset}",
                lambda: (
                    load_with_aeon(config.dataset, config.cache_dir / "aeon") if config.download else None
                ),
            ),
            (f"aeon bundled {OFFLINE_DEFAULT} (offline default)", lambda: load_with_aeon(OFFLINE_DEFAULT)),
        ]

    def prepare(self, config: ActionRecognitionConfig) -> PreparedData:
        """Load the first available source, clean, split, scale and cache it."""
        source, raw = first_available(self._sources(config))
        content = [
            (np.concatenate([s.reshape(-1) for s in sequences]).tobytes().hex(), labels.tolist())
            for sequences, labels in (raw["train"], raw["test"])
        ]
        key = fingerprint(
            CACHE_VERSION, config.model_dump(exclude={"cache_dir", "data_dir"}), fingerprint(content)
        )
        cache = Path(config.cache_dir) / self.name / key
        return load_prepared(cache, self, source, key) or self._build(raw, config, source, key, cache)

    def _build(
        self, raw: dict[str, RawSplit], config: ActionRecognitionConfig, source: str, key: str, cache: Path
    ) -> PreparedData:
        stats: dict[str, float] = {}
        cleaned = {split: clean(*part) for split, part in raw.items()}
        for split, (sequences, _) in cleaned.items():
            stats[f"dropped_missing_{split}"] = len(raw[split][0]) - len(sequences)
        order = label_order(cleaned["train"][1])
        channels = {s.shape[1] for sequences, _ in cleaned.values() for s in sequences}
        if len(channels) != 1:
            raise DataSourceError(f"{source}: cases have different channel counts {sorted(channels)}")
        train_sequences, train_labels = cleaned["train"]
        train_index, validation_index = stratified_holdout(
            train_labels, config.validation_fraction, config.seed
        )
        test_sequences, test_labels = cleaned["test"]
        known = np.isin(test_labels, order)
        stats["dropped_unknown_label_test"] = int((~known).sum())
        parts = {
            "train": ([train_sequences[i] for i in train_index], train_labels[train_index]),
            "validation": ([train_sequences[i] for i in validation_index], train_labels[validation_index]),
            "test": ([s for s, k in zip(test_sequences, known, strict=True) if k], test_labels[known]),
        }
        if config.limit:
            parts = {split: evenly_spaced(part, config.limit) for split, part in parts.items()}
        steps = np.concatenate(parts["train"][0])
        names = class_names(config, source, order)
        codec = ActionCodec(
            [names.get(label, label) for label in order],
            steps.mean(axis=0).tolist(),
            (steps.std(axis=0) + 1e-6).tolist(),
            config.max_length,
        )
        index = {label: i for i, label in enumerate(order)}
        splits = {}
        for split, (sequences, labels) in parts.items():
            scaled = [(s - codec.mean) / codec.std for s in sequences]
            splits[split] = sequence_table(scaled, np.array([index[label] for label in labels]))
            lengths = [len(s) for s in sequences]
            stats.update({f"rows_{split}": len(sequences), f"max_length_{split}": max(lengths)})
            stats[f"min_length_{split}"] = min(lengths)
        stats.update({"channels": len(codec.mean), "classes": len(order)})
        return save_prepared(PreparedData(datasets.DatasetDict(splits), codec, source, key, stats), cache)

    def load_codec(self, directory: Path) -> ActionCodec:
        """Load class names, scaler and length limit saved in a model bundle."""
        return ActionCodec.load(directory)

    def references(
        self, split: datasets.Dataset, codec: ActionCodec
    ) -> tuple[list[dict[str, Any]], list[int]]:
        """Sequences in original units (as a user would send them) and their true class ids."""
        table = split.with_format("arrow")[:]
        rows = [
            {"sequence": (np.array(steps, np.float32) * codec.std + codec.mean).tolist()}
            for steps in table.column("inputs").to_pylist()
        ]
        return rows, table.column("label").to_pylist()

    def baselines(self, prepared: PreparedData) -> dict[str, Callable[[], dict[str, float]]]:
        """1-nearest-neighbour DTW and MiniRocket (``tasks.action_recognition.baseline``)."""
        return {
            "1nn_dtw": partial(nearest_neighbour_dtw, self, prepared),
            "minirocket": partial(minirocket, self, prepared),
        }

    def metrics(self, predictions: list[dict[str, Any]], references: list[int]) -> dict[str, float]:
        """Accuracy, macro precision/recall/F1 and every class's recall."""
        predicted = np.array([p["label_id"] for p in predictions])
        labels = list(predictions[0]["probabilities"])
        return classification_scores(predicted, np.array(references), labels, per_class=True)


def class_names(config: ActionRecognitionConfig, source: str, order: list[str]) -> dict[str, str]:
    """Display names: the configured ones, else the data set's known names when its labels match them."""
    if config.class_names:
        unknown = sorted(set(config.class_names) - set(order))
        if unknown:
            raise DataSourceError(f"class_names has labels {unknown} not in the data; labels are {order}")
        return config.class_names
    dataset = OFFLINE_DEFAULT if source.endswith("(offline default)") else config.dataset
    known = KNOWN_CLASS_NAMES.get(dataset, {})
    return known if set(known) == set(order) else {}


def evenly_spaced(
    part: tuple[list[np.ndarray], np.ndarray], limit: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """At most ``limit`` cases spread over the split (files are often sorted by class)."""
    sequences, labels = part
    if len(sequences) <= limit:
        return part
    picks = np.linspace(0, len(sequences) - 1, limit).astype(int)
    return [sequences[i] for i in picks], labels[picks]


TASK = ActionRecognition()
