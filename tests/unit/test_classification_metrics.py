import numpy as np
import pytest

from tasks.classification_metrics import classification_scores, confusion_matrix


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_scores_match_hand_computation():
    predicted, actual = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 0, 1])
    scores = classification_scores(predicted, actual, 2)
    # class 0: precision 2/2, recall 2/3, f1 0.8; class 1: precision 2/3, recall 1, f1 0.8
    assert scores["accuracy"] == pytest.approx(0.8)
    assert scores["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores["macro_f1"] == pytest.approx(0.8)


def test_class_never_predicted_counts_as_zero_f1():
    scores = classification_scores(np.array([0, 0, 0]), np.array([0, 1, 0]), 2)
    assert scores["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)
