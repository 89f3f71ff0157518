import numpy as np
import pytest

from tasks.common.classification import class_predictions, classification_scores, confusion_matrix


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_scores_match_hand_computation():
    predicted, actual = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 0, 1])
    scores = classification_scores(predicted, actual, ["no", "yes"])
    # class 0: precision 2/2, recall 2/3, f1 0.8; class 1: precision 2/3, recall 1, f1 0.8
    assert scores["accuracy"] == pytest.approx(0.8)
    assert scores["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores["macro_f1"] == pytest.approx(0.8)


def test_class_never_predicted_counts_as_zero_f1():
    scores = classification_scores(np.array([0, 0, 0]), np.array([0, 1, 0]), ["no", "yes"])
    assert scores["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)


def test_per_class_recall_is_named_after_the_class():
    labels = ["I have command", "All clear", "Not clear"]
    scores = classification_scores(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), labels, per_class=True)
    assert scores["recall_i_have_command"] == pytest.approx(0.5)
    assert scores["recall_all_clear"] == scores["recall_not_clear"] == 1.0


def test_class_predictions_name_every_probability():
    (record,) = class_predictions(np.array([[0.0, 2.0, 1.0]]), ["a", "b", "c"])
    assert record["label"] == "b" and record["label_id"] == 1
    assert list(record["probabilities"]) == ["a", "b", "c"]
    assert sum(record["probabilities"].values()) == pytest.approx(1.0)
    assert record["confidence"] == pytest.approx(max(record["probabilities"].values()))
