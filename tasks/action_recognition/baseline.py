"""Action recognition's classical baseline: 1-nearest-neighbour with dynamic time warping (aeon).

It compares the same z-scored sequences the networks read (each channel's steps, at their own
length), fitted on the training split; the test split is scored by the task's own metrics. It has
no setting to choose, so validation is not read.
"""

from __future__ import annotations

import numpy as np

from tasks.common.base import PreparedData, Task
from tasks.common.classification import class_predictions
from tasks.common.hooks import BaselineSkipped

MAX_PAIRS = 4_000_000  # training x test sequence pairs; beyond this DTW takes minutes here: skipped


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
    probabilities = np.zeros((len(test), len(prepared.codec.labels)))
    probabilities[:, model.classes_] = model.predict_proba(test)
    with np.errstate(divide="ignore"):  # log(0) is -inf: a class no neighbour has
        predictions = class_predictions(np.log(probabilities), prepared.codec.labels)
    return task.metrics(predictions, references.tolist())
