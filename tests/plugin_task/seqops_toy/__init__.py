"""A toy task a user might write: is a noisy sequence's sum up or down? Synthetic data, no files.

It reuses seqops' classifier family and shared classification code, and is registered only through
its package's ``seqops.tasks`` entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import numpy as np

from tasks import DataConfig, InvalidRow, PreparedData
from tasks.common.base import JsonCodec, fingerprint
from tasks.common.classification import ClassificationTask, class_predictions, classification_scores

LABELS = ["down", "up"]
# One value per step, as a fixed-size list: the classifier family reads (steps, channels) arrays.
FEATURES = datasets.Features(
    {
        "inputs": datasets.List(datasets.List(datasets.Value("float32"), length=1)),
        "label": datasets.Value("int64"),
    }
)


class ToyCodec(JsonCodec):
    """A row's ``values`` (a list of numbers) in, ``down`` or ``up`` out."""

    def __init__(self, labels: list[str]):
        self.labels = labels

    def parse(self, row: dict[str, Any]) -> np.ndarray:
        values = row.get("values")
        if not isinstance(values, list) or not values:
            raise InvalidRow("'values' must be a non-empty list of numbers")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise InvalidRow("'values' must hold numbers only")
        return np.array(values, dtype=np.float32)[:, None]

    def encode(self, items: list[np.ndarray]) -> dict[str, np.ndarray]:
        lengths = np.array([len(item) for item in items], dtype=np.int64)
        inputs = np.zeros((len(items), int(lengths.max()), 1), dtype=np.float32)
        for row, item in enumerate(items):
            inputs[row, : len(item)] = item
        return {"inputs": inputs, "lengths": lengths}

    def decode(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        return class_predictions(outputs["logits"], self.labels)

    def network_shape(self) -> dict[str, int]:
        return {"input_size": 1, "num_classes": len(self.labels)}

    def settings(self) -> dict[str, Any]:
        return {"labels": self.labels}


class ToySign(ClassificationTask):
    """Label a sequence ``up`` when its values sum above zero."""

    name = "toy_sign"
    promotion_metric = "accuracy"
    promotion_direction = "max"

    def prepare(self, config: DataConfig) -> PreparedData:
        generator = np.random.default_rng(config.seed)
        splits = {}
        for split, count in (("train", 600), ("validation", 150), ("test", 150)):
            sequences = [
                generator.normal(0.1 * generator.choice([-1, 1]), 1.0, generator.integers(3, 20))
                for _ in range(config.limit or count)
            ]
            columns = {
                "inputs": [s[:, None].tolist() for s in sequences],
                "label": [int(s.sum() > 0) for s in sequences],
            }
            splits[split] = datasets.Dataset.from_dict(columns, features=FEATURES)
        key = fingerprint("toy", config.seed, config.limit)
        return PreparedData(datasets.DatasetDict(splits), ToyCodec(LABELS), "synthetic", key, {})

    def load_codec(self, directory: Path) -> ToyCodec:
        return ToyCodec.load(directory)

    def references(self, split: Any, codec: ToyCodec) -> tuple[list[dict[str, Any]], list[int]]:
        return [{"values": [step[0] for step in s]} for s in split["inputs"]], list(split["label"])

    def metrics(self, predictions: list[dict[str, Any]], references: list[int]) -> dict[str, float]:
        predicted = np.array([p["label_id"] for p in predictions])
        return classification_scores(predicted, np.array(references), LABELS)


TASK = ToySign()
