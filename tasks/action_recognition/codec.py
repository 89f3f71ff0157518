"""The action-recognition codec: sequences of channel vectors z-scored and padded, logits to class names."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field, PositiveFloat
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before Python 3.12

from tasks.common.assets import ClassNames
from tasks.common.base import JsonCodec
from tasks.common.classification import class_predictions
from tasks.common.errors import InvalidRow
from tasks.common.steps import parse_steps


class ActionSettings(TypedDict):
    """What ``codec.json`` holds for an action recogniser."""

    labels: ClassNames
    mean: Annotated[list[float], Field(min_length=1)]
    std: list[PositiveFloat]
    max_length: Annotated[int, Field(ge=1)]


class ActionCodec(JsonCodec):
    """Z-scores and pads sequences of channel vectors; turns logits into named class probabilities."""

    settings_schema = ActionSettings

    def __init__(self, labels: list[str], mean: list[float], std: list[float], max_length: int):
        self.labels, self.max_length = labels, max_length
        self.mean, self.std = np.array(mean, np.float32), np.array(std, np.float32)
        if len(mean) != len(std):
            raise ValueError(f"{len(mean)} channel means but {len(std)} deviations")

    def parse(self, row: dict[str, Any]) -> np.ndarray:
        """Validate ``sequence``: a list of time steps, each a list of one value per channel."""
        steps = parse_steps(row, "sequence", len(self.mean), scale=(self.mean, self.std))
        if len(steps) > self.max_length:
            raise InvalidRow(f"sequence has {len(steps)} steps, more than max_length {self.max_length}")
        return steps

    def encode(self, items: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Z-scored ``inputs`` (batch, longest, channels), zero after each sequence's end, and ``lengths``."""
        lengths = np.array([len(item) for item in items], dtype=np.int64)
        inputs = np.zeros((len(items), int(lengths.max(initial=1)), len(self.mean)), dtype=np.float32)
        for row, item in enumerate(items):
            inputs[row, : len(item)] = (item - self.mean) / self.std
        return {"inputs": inputs, "lengths": lengths}

    def decode(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Class label, confidence and every class's probability."""
        return class_predictions(outputs["logits"], self.labels)

    def network_shape(self) -> dict[str, int]:
        """Input channels and number of classes."""
        return {"input_size": len(self.mean), "num_classes": len(self.labels)}

    def settings(self) -> dict[str, Any]:
        """Class names, scaler and length limit (saved as ``codec.json``)."""
        return {
            "labels": self.labels,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "max_length": self.max_length,
        }
