"""Repeated seeds: the spread reported over seeds, and the seed registered (chosen on validation only)."""

import pytest

from flows.config import TaskSettings
from flows.seeds import best_on_validation, seed_spread, seeded


def rows(better: str) -> list[dict]:
    return [
        {
            "seed": 42,
            "validation_score": 0.80,
            "validation_better": better,
            "test_accuracy": 0.81,
            "test_loss": 3,
        },
        {"seed": 43, "validation_score": 0.90, "validation_better": better, "test_accuracy": 0.79},
        {"seed": 44, "validation_score": 0.70, "validation_better": better, "test_accuracy": 0.86},
    ]


def test_the_spread_is_the_mean_and_sample_deviation_of_the_test_metrics_all_seeds_have():
    spread = seed_spread(rows("max"))
    assert set(spread) == {"test_accuracy_mean", "test_accuracy_std"}
    assert spread["test_accuracy_mean"] == pytest.approx(0.82)
    assert spread["test_accuracy_std"] == pytest.approx(0.036055, abs=1e-6)  # ddof=1
    assert seed_spread(rows("max")[:1])["test_accuracy_std"] == 0.0


def test_the_registered_seed_is_the_best_on_validation_whatever_its_test_score():
    assert best_on_validation(rows("max"))["seed"] == 43  # the worst on test
    assert best_on_validation(rows("min"))["seed"] == 44


def test_each_seed_moves_the_training_seed_and_nothing_else():
    settings = TaskSettings.model_validate({"train": {"seed": 7, "learning_rate": 0.01}})
    third = seeded(settings, 2)
    assert third.train.seed == 9 and third.train.learning_rate == 0.01 and settings.train.seed == 7
