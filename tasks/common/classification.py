"""Classification in numpy, shared by every classification task: decoding logits, scoring, diagnostics."""

from __future__ import annotations

import re
from abc import ABC
from typing import Any, ClassVar

import numpy as np

from tasks.common.base import Task
from tasks.common.hooks import Artifact, Evaluation, Figure


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def class_predictions(logits: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """One record per row of ``logits``: label, label id, confidence and every class's probability.

    Args:
        logits: Model outputs, shape ``(batch, classes)``.
        labels: Class names, in class-id order.

    Returns:
        ``label``, ``label_id``, ``confidence`` and ``probabilities`` (class name -> probability).
    """
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=1).tolist()
    return [  # plain Python lists: indexing numpy rows one value at a time costs more than the model
        {
            "label": labels[index],
            "label_id": index,
            "confidence": row[index],
            "probabilities": dict(zip(labels, row, strict=True)),
        }
        for index, row in zip(best, probabilities.tolist(), strict=True)
    ]


def confusion_matrix(predicted: np.ndarray, actual: np.ndarray, num_classes: int) -> np.ndarray:
    """Count matrix with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(actual), np.asarray(predicted)), 1)
    return matrix


def classification_scores(
    predicted: np.ndarray, actual: np.ndarray, labels: list[str], per_class: bool = False
) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1, optionally each class's recall.

    Args:
        predicted: Predicted class ids.
        actual: True class ids.
        labels: Class names in id order (classes absent from both count as zero, not skipped).
        per_class: Add ``recall_<class>`` for every class (names lower-cased, other characters ``_``).

    Returns:
        ``accuracy``, ``precision``, ``recall`` and ``macro_f1``, each in [0, 1].
    """
    matrix = confusion_matrix(predicted, actual, len(labels)).astype(np.float64)
    true_positives = np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(true_positives / matrix.sum(axis=0))
        recall = np.nan_to_num(true_positives / matrix.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    scores = {
        "accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
    }
    if per_class:
        for label, value in zip(labels, recall, strict=True):
            scores[f"recall_{metric_slug(label)}"] = float(value)
    return scores


def metric_slug(label: str) -> str:
    """A class name usable in a metric key: ``I have command`` -> ``i_have_command``."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "class"


class ClassificationTask(Task, ABC):
    """A task whose codec decodes class records (``label_id``, ``probabilities``): its shared hooks."""

    family = "classifier"
    promotion_metric = "macro_f1"
    promotion_direction = "max"
    summary_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "precision", "recall")
    # The classifier's shape choices; each task adds its own ranges of sizes and rates.
    search_space: ClassVar[dict[str, dict[str, Any]]] = {
        "model.num_layers": {"low": 1, "high": 2},
        "model.bidirectional": {"choices": [False, True]},
        "model.pooling": {"choices": ["last", "mean", "max"]},
    }

    def diagnostics(self, evaluation: Evaluation) -> list[Artifact]:
        """The test split's confusion matrix, with class names."""
        from tasks.common.plots import confusion_matrix_figure  # matplotlib only when plotting

        labels = evaluation.codec.labels
        predicted = np.array([p["label_id"] for p in evaluation.predictions])
        matrix = confusion_matrix(predicted, np.array(evaluation.references), len(labels))
        return [Figure("confusion_matrix.png", confusion_matrix_figure(matrix, labels, evaluation.title))]
