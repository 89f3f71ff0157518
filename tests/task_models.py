"""Small servable models of every task, trained once per session on synthetic data.

The task modules test them as models (accuracy through ONNX, parity, batch jobs), and the malformed
input corpus and fuzz tests run jobs against them, so each is trained only once per test run.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundle_cache import cached_network

from tasks import get_task

MODEL_FIXTURES = {  # the session fixture holding each task's model (sentiment_bundle is conftest's)
    "sentiment": "sentiment_bundle",
    "translation": "translation_model",
    "forecasting": "forecasting_model",
    "action_recognition": "action_model",
    "text_generation": "text_generation_model",
}
GESTURE_CLASSES = ["wave", "push", "circle"]
# A toy language pair: every source word has one target word, and the target reverses the order,
# so the decoder must attend to the right source position at every step.
LEXICON = dict(
    zip(
        ["ka", "lo", "mi", "nu", "pe", "ri", "so", "tu"],
        ["one", "two", "three", "four", "five", "six", "seven", "eight"],
        strict=True,
    )
)


def bundle_of(request: pytest.FixtureRequest, task: str) -> Path:
    """The bundle of a task's session model, trained on first use."""
    model = request.getfixturevalue(MODEL_FIXTURES[task])
    return model if isinstance(model, Path) else model[2]  # (task, prepared, bundle, ...)


def fit_bundle(task_name: str, prepared, work: Path, model: dict, training: dict, cell: str = "lstm"):
    """Train a small network on prepared data, export it with the parity check, write a servable bundle.

    Returns the bundle folder and the trained network.
    """
    from models.config import ModelConfig, TrainConfig
    from models.export import export_graphs
    from models.train import train
    from serving.bundle import save_bundle

    family = get_task(task_name).family
    network = cached_network(
        lambda: (
            task_name,
            [prepared.splits[split].to_dict() for split in ("train", "validation")],
            model,
            training,
            cell,
        ),
        lambda: (
            train(
                family,
                prepared,
                ModelConfig(cell=cell, dropout=0.0, **model),
                TrainConfig(**training),
                work / "ckpt",
            ).network
        ),
    )
    export_graphs(family, network, work / "graphs", prepared.codec.network_shape())
    bundle = save_bundle(work / "bundle", task_name, prepared.codec, work / "graphs", {"cell": cell})
    return bundle, network


def train_bundle(task_name: str, prepared, work: Path, model: dict, training: dict) -> Path:
    """A servable bundle of a small LSTM (see ``fit_bundle``)."""
    return fit_bundle(task_name, prepared, work, model, training)[0]


def prepare_forecasting(path: Path, cache: Path, **settings):
    """The forecasting task on a CSV series with target ``load``: 48 steps in, 12 out."""
    task = get_task("forecasting")
    return task, task.prepare(
        task.config(csv_file=path, target="load", cache_dir=cache, lookback=48, horizon=12, **settings)
    )


def prepare_gestures(files: tuple[Path, Path], cache: Path, **settings):
    """The action recognition task on a pair of ``.ts`` files (train, test)."""
    task = get_task("action_recognition")
    train_file, test_file = files
    return task, task.prepare(
        task.config(train_file=train_file, test_file=test_file, cache_dir=cache, **settings)
    )


def prepare_translation(corpus: Path, cache: Path, **settings):
    """The translation task on the toy ``xx`` -> ``yy`` corpus."""
    task = get_task("translation")
    config = task.config(
        corpus_dir=corpus,
        source_language="xx",
        target_language="yy",
        cache_dir=cache,
        vocab_size=100,
        max_train_tokens=20,
        **settings,
    )
    return task, task.prepare(config)


def synthetic_gesture(rng: np.random.Generator, label: int, length: int) -> np.ndarray:
    """Three channels of noise; the class decides which channel carries a slow sine (channels, steps)."""
    steps = np.arange(length)
    case = 0.3 * rng.standard_normal((3, length)) + 5.0  # offset: normalisation must remove it
    case[label] += 2.0 * np.sin(2 * np.pi * steps / length + rng.uniform(0, 1))
    return case


def write_ts(path: Path, cases: int, seed: int) -> Path:
    from aeon.datasets import save_to_ts_file

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, cases)
    collection = [synthetic_gesture(rng, int(label), int(rng.integers(8, 31))) for label in labels]
    save_to_ts_file(
        collection,
        np.array([GESTURE_CLASSES[i] for i in labels]),
        label_type="classification",
        path=str(path.parent),
        problem_name=path.stem,
    )
    return path


def write_corpus(folder: Path, pairs: int, stem: str, seed: int, long: int = 0) -> None:
    rng = random.Random(seed)
    sources, targets = [], []
    for index in range(pairs):
        length = 30 if index < long else rng.randint(3, 7)
        words = [rng.choice(list(LEXICON)) for _ in range(length)]
        sources.append(" ".join(words))
        targets.append(" ".join(LEXICON[w] for w in reversed(words)))
    (folder / f"{stem}.xx").write_text("\n".join(sources) + "\n")
    (folder / f"{stem}.yy").write_text("\n".join(targets) + "\n")


SINE_LEVEL, SINE_AMPLITUDE = 10.0, 0.5  # the load in original units: far from its z-scores (about ±1.5)


@pytest.fixture(scope="session")
def sine_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hourly sine around ``SINE_LEVEL`` with a daily period, noise and a few gaps.

    The level keeps forecasts in original units apart from z-scored ones; the deviation stays below 1,
    so a value near float32's limit still overflows once scaled (the corpus has such a row).
    """
    rng = np.random.default_rng(0)
    steps = np.arange(1200)
    wave = np.sin(2 * math.pi * steps / 24) + 0.1 * rng.standard_normal(len(steps))
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=len(steps), freq="h"),
            "load": SINE_LEVEL + SINE_AMPLITUDE * wave,
            "temp": 20.0 + SINE_AMPLITUDE * np.cos(2 * math.pi * steps / 24),
        }
    )
    frame.loc[[10, 11, 500], "load"] = np.nan
    path = tmp_path_factory.mktemp("series") / "sine.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def gesture_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Synthetic three-channel gestures of 8 to 30 steps: 240 training and 90 test cases."""
    folder = tmp_path_factory.mktemp("gestures")
    return write_ts(folder / "gestures_train.ts", 240, 1), write_ts(folder / "gestures_test.ts", 90, 2)


@pytest.fixture(scope="session")
def translation_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy language pair: 2000 training pairs (5 of them too long), 100 validation and 100 test."""
    folder = tmp_path_factory.mktemp("corpus")
    write_corpus(folder, 2000, "train", 1, long=5)
    write_corpus(folder, 100, "val", 2)
    write_corpus(folder, 100, "test_2016_flickr", 3)
    return folder


@pytest.fixture(scope="session")
def forecasting_model(sine_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    """A small LSTM trained on the sine, exported, parity-checked and bundled: (task, prepared, bundle)."""
    work = tmp_path_factory.mktemp("forecast")
    task, prepared = prepare_forecasting(sine_csv, work / "cache")
    bundle = train_bundle(
        "forecasting",
        prepared,
        work,
        {"embedding_dim": 16, "hidden_size": 32},
        {"max_epochs": 8, "batch_size": 32, "learning_rate": 0.005, "patience": 8},
    )
    return task, prepared, bundle


@pytest.fixture(scope="session")
def action_model(gesture_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    """A small bidirectional LSTM trained on the synthetic gestures: (task, prepared, bundle)."""
    work = tmp_path_factory.mktemp("gesture-model")
    task, prepared = prepare_gestures(gesture_files, work / "cache")
    bundle = train_bundle(
        "action_recognition",
        prepared,
        work,
        {"embedding_dim": 16, "hidden_size": 24, "bidirectional": True, "pooling": "mean"},
        {"max_epochs": 15, "batch_size": 16, "learning_rate": 0.01, "patience": 15},
    )
    return task, prepared, bundle


@pytest.fixture(scope="session")
def translation_model(translation_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """A small GRU seq2seq trained on the toy pair, two graphs bundled: (task, prepared, bundle, network)."""
    work = tmp_path_factory.mktemp("translator")
    task, prepared = prepare_translation(translation_corpus, work / "cache", beam_width=3)
    bundle, network = fit_bundle(
        "translation",
        prepared,
        work,
        {"embedding_dim": 32, "hidden_size": 64, "bidirectional": True},
        {"max_epochs": 12, "batch_size": 32, "learning_rate": 0.01, "patience": 12},
        cell="gru",
    )
    return task, prepared, bundle, network
