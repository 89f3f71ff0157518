"""Classification metrics in numpy, shared by every classification task."""

from __future__ import annotations

import numpy as np


def confusion_matrix(predicted: np.ndarray, actual: np.ndarray, num_classes: int) -> np.ndarray:
    """Count matrix with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(actual), np.asarray(predicted)), 1)
    return matrix


def classification_scores(predicted: np.ndarray, actual: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1.

    Args:
        predicted: Predicted class ids.
        actual: True class ids.
        num_classes: Number of classes (classes absent from both count as zero, not skipped).

    Returns:
        ``accuracy``, ``precision``, ``recall`` and ``macro_f1``, each in [0, 1].
    """
    matrix = confusion_matrix(predicted, actual, num_classes).astype(np.float64)
    true_positives = np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(true_positives / matrix.sum(axis=0))
        recall = np.nan_to_num(true_positives / matrix.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {
        "accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
    }
