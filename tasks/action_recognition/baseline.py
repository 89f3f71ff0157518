"""Action recognition's classical baselines (aeon): 1-nearest-neighbour DTW and MiniRocket.

Both read the same z-scored sequences the networks read (each channel's steps), are fitted on the
training split and scored on the test split by the task's own metrics. Neither has a setting to
choose here, so validation is not read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.common.base import PreparedData, Task
from tasks.common.classification import class_predictions
from tasks.common.hooks import BaselineSkipped

MAX_PAIRS = 4_000_000  # training x test sequence pairs; beyond this DTW takes minutes here: skipped
MAX_MINIROCKET_VALUES = 20_000_000  # sequences x steps x channels transformed; beyond this: skipped
MINIROCKET_MIN_STEPS = 9  # its kernels are 9 steps long


def sequences(split: object) -> tuple[list[np.ndarray], np.ndarray]:
    """A split's sequences as ``(channels, steps)`` arrays, and their class ids."""
    table = split.with_format("arrow")[:]
    arrays = [np.asarray(steps, dtype=np.float64).T for steps in table.column("inputs").to_pylist()]
    return arrays, np.asarray(table.column("label").to_pylist())


def nearest_neighbour_dtw(task: Task, prepared: PreparedData) -> dict[str, float]:
    """Test metrics of 1-NN DTW (dependent: one warping path for all channels).

    Raises:
        BaselineSkipped: When there are too many sequence pairs to compare in a pipeline run.
    """
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    train, labels = sequences(prepared.splits["train"])
    test, references = sequences(prepared.splits["test"])
    if len(train) * len(test) > MAX_PAIRS:
        raise BaselineSkipped(f"{len(train):,} x {len(test):,} sequence pairs, more than {MAX_PAIRS:,}")
    model = KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1).fit(train, labels)
    return _scores(task, prepared, model, test, references)


def minirocket(task: Task, prepared: PreparedData) -> dict[str, float]:
    """Test metrics of MiniRocket (10,000 convolution features, ridge classifier), seeded.

    Sequences of unequal length are padded at the end with zeros, the training mean after scaling.

    Raises:
        BaselineSkipped: When the splits hold too many values to transform in a pipeline run.
    """
    from aeon.classification.convolution_based import MiniRocketClassifier

    train, labels = sequences(prepared.splits["train"])
    test, references = sequences(prepared.splits["test"])
    steps = max(MINIROCKET_MIN_STEPS, *(len(s.T) for s in train + test))
    values = (len(train) + len(test)) * steps * train[0].shape[0]
    if values > MAX_MINIROCKET_VALUES:
        raise BaselineSkipped(f"{values:,} values to transform, more than {MAX_MINIROCKET_VALUES:,}")
    model = MiniRocketClassifier(random_state=0).fit(padded(train, steps), labels)
    return _scores(task, prepared, model, padded(test, steps), references)


def padded(arrays: list[np.ndarray], steps: int) -> np.ndarray:
    """``(channels, length)`` arrays zero-padded at the end into one ``(n, channels, steps)`` array."""
    batch = np.zeros((len(arrays), arrays[0].shape[0], steps))
    for row, array in zip(batch, arrays, strict=True):
        row[:, : array.shape[1]] = array
    return batch


def _scores(
    task: Task, prepared: PreparedData, model: Any, test: Any, references: np.ndarray
) -> dict[str, float]:
    probabilities = np.zeros((len(references), len(prepared.codec.labels)))
    probabilities[:, model.classes_] = model.predict_proba(test)
    with np.errstate(divide="ignore"):  # log(0) is -inf: a class the model never predicts
        predictions = class_predictions(np.log(probabilities), prepared.codec.labels)
    return task.metrics(predictions, references.tolist())
