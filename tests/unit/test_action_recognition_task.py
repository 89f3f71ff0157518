import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import fit_bundle, train_bundle

from models.export import parity_error
from serving.batch import run_batch
from serving.predictor import Predictor
from tasks import DataSourceError, InvalidRow, get_task

CLASSES = ["wave", "push", "circle"]


def synthetic_gesture(rng: np.random.Generator, label: int, length: int) -> np.ndarray:
    """Three channels of noise; the class decides which channel carries a slow sine (channels, steps)."""
    steps = np.arange(length)
    case = 0.3 * rng.standard_normal((3, length)) + 5.0  # offset: normalisation must remove it
    case[label] += 2.0 * np.sin(2 * np.pi * steps / length + rng.uniform(0, 1))
    return case


def write_ts(path, cases: int, seed: int):
    from aeon.datasets import save_to_ts_file

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, cases)
    collection = [synthetic_gesture(rng, int(label), int(rng.integers(8, 31))) for label in labels]
    save_to_ts_file(
        collection,
        np.array([CLASSES[i] for i in labels]),
        label_type="classification",
        path=str(path.parent),
        problem_name=path.stem,
    )
    return path


@pytest.fixture(scope="module")
def gesture_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gestures")
    return write_ts(folder / "gestures_train.ts", 240, 1), write_ts(folder / "gestures_test.ts", 90, 2)


def prepare(files, cache, **settings):
    task = get_task("action_recognition")
    train_file, test_file = files
    return task, task.prepare(
        task.config(train_file=train_file, test_file=test_file, cache_dir=cache, **settings)
    )


def test_variable_lengths_stratified_validation_and_train_only_scaling(gesture_files, tmp_path):
    _, prepared = prepare(gesture_files, tmp_path)
    stats = prepared.stats
    assert stats["rows_train"] + stats["rows_validation"] == 240 and stats["rows_test"] == 90
    assert (stats["min_length_train"], stats["max_length_train"]) == (8, 30)
    assert prepared.codec.labels == sorted(CLASSES) and prepared.codec.network_shape() == {
        "input_size": 3,
        "num_classes": 3,
    }
    validation = np.array(prepared.splits["validation"]["label"])
    assert all(abs((validation == k).sum() - 0.2 * 80) <= 6 for k in range(3))  # every class held out
    assert np.allclose(prepared.codec.mean, 5.0, atol=0.2)  # fitted on training steps
    codec = prepared.codec
    feeds = codec.encode([np.full((4, 3), 5.0, np.float32), np.full((2, 3), 5.0, np.float32)])
    assert feeds["inputs"].shape == (2, 4, 3) and feeds["lengths"].tolist() == [4, 2]
    assert np.abs(feeds["inputs"]).max() < 0.5  # padding and the train mean both encode near zero


def test_codec_rejects_bad_sequences(gesture_files, tmp_path):
    _, prepared = prepare(gesture_files, tmp_path, max_length=50)
    codec = prepared.codec
    good = [[0.1, 0.2, 0.3]] * 5
    assert codec.parse({"sequence": good}).shape == (5, 3)
    cases = [
        ({}, "non-empty list"),
        ({"sequence": []}, "non-empty list"),
        ({"sequence": "0.1,0.2"}, "non-empty list"),
        ({"sequence": good + [[0.1, 0.2]]}, "step 5 has 2 values, expected 3"),
        ({"sequence": [[0.1, 0.2, 0.3, 0.4]] * 3}, "expected 3"),
        ({"sequence": good + [[0.1, float("nan"), 0.3]]}, "NaN"),
        ({"sequence": good + [[0.1, "x", 0.3]]}, "non-numeric"),
        ({"sequence": good + [[0.1, [0.2], 0.3]]}, "nested"),
        ({"sequence": [[0.1, 0.2, 0.3]] * 51}, "more than max_length 50"),
    ]
    for row, reason in cases:
        with pytest.raises(InvalidRow, match=reason):
            codec.parse(row)


def test_sources_fail_clearly_and_fall_back_to_basic_motions(gesture_files, tmp_path):
    task = get_task("action_recognition")
    with pytest.raises(DataSourceError, match="test_file"):
        task.prepare(task.config(train_file=gesture_files[0], cache_dir=tmp_path))
    with pytest.raises(DataSourceError, match="not in the data"):
        prepare(gesture_files, tmp_path, class_names={"jump": "Jump"})
    (tmp_path / "data" / "unknownset").mkdir(parents=True)
    with pytest.raises(DataSourceError, match="no unknownset_TRAIN"):
        task.prepare(task.config(dataset="unknownset", data_dir=tmp_path / "data", cache_dir=tmp_path))
    fallback = task.prepare(task.config(dataset="NotOffline", cache_dir=tmp_path))
    assert "BasicMotions (offline default)" in fallback.source
    assert fallback.codec.labels == ["badminton", "running", "standing", "walking"]


def test_real_natops_splits_and_class_names(shared_data_dir, tmp_path):
    task = get_task("action_recognition")
    prepared = task.prepare(task.config(data_dir=shared_data_dir, cache_dir=tmp_path))
    stats = prepared.stats
    assert (stats["rows_train"], stats["rows_validation"], stats["rows_test"]) == (144, 36, 180)
    assert (stats["channels"], stats["max_length_test"]) == (24, 51)
    assert prepared.codec.labels[0] == "I have command" and len(prepared.codec.labels) == 6


@pytest.fixture(scope="module")
def trained(gesture_files, tmp_path_factory):
    """A small bidirectional LSTM trained on the synthetic gestures, exported and bundled."""
    work = tmp_path_factory.mktemp("gesture-model")
    task, prepared = prepare(gesture_files, work / "cache")
    bundle = train_bundle(
        "action_recognition",
        prepared,
        work,
        {"embedding_dim": 16, "hidden_size": 24, "bidirectional": True, "pooling": "mean"},
        {"max_epochs": 15, "batch_size": 16, "learning_rate": 0.01, "patience": 15},
    )
    return task, prepared, bundle


def test_small_model_learns_the_gestures_through_onnx(trained):
    task, prepared, bundle = trained
    predictor = Predictor(bundle)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    scores = task.metrics(predictor.predict_rows(rows), references)
    assert scores["accuracy"] > 0.9 and scores["macro_f1"] > 0.9
    assert {f"recall_{c}" for c in CLASSES} <= set(scores)


def test_batch_job_predicts_sequences_and_reports_bad_rows(trained, tmp_path):
    task, prepared, bundle = trained
    rows, _ = task.references(prepared.splits["test"], prepared.codec)
    bad = [
        {"sequence": [[1.0, 2.0]] * 5},
        {"sequence": []},
        {"sequence": [[1.0, 2.0, float("nan")]]},
        {"sequence": [[1.0, 2.0, 3.0], [1.0, 2.0]]},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in [*rows[:3], *bad, rows[3]]))
    summary = run_batch(bundle, source, tmp_path / "out.parquet", show_progress=False)
    assert (summary.predicted, summary.errors) == (4, 4)
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["row"] for r in table] == [1, 2, 3, 8]  # 1-based input line numbers
    assert table[0]["label"] in CLASSES and set(table[0]["probabilities"]) == set(CLASSES)
    errors = [json.loads(line) for line in (tmp_path / "out.parquet.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [4, 5, 6, 7]
    assert "expected 3" in errors[0]["error"] and "NaN" in errors[2]["error"]


def test_japanese_vowels_variable_length_trains_and_keeps_parity_at_unseen_lengths(tmp_path):
    task = get_task("action_recognition")
    prepared = task.prepare(task.config(dataset="JapaneseVowels", cache_dir=tmp_path))
    assert (prepared.stats["min_length_test"], prepared.stats["max_length_test"]) == (7, 29)
    bundle, network = fit_bundle(
        "action_recognition",
        prepared,
        tmp_path,
        {"embedding_dim": 24, "hidden_size": 32, "bidirectional": True},
        {"max_epochs": 6, "batch_size": 16, "learning_rate": 0.01, "patience": 6},
        cell="gru",
    )
    predictor = Predictor(bundle)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    assert task.metrics(predictor.predict_rows(rows), references)["accuracy"] > 0.7  # 9 speakers

    # Parity on real test cases of every length from 7 to 29 in one padded batch (export used 4 x 12).
    by_length = {len(r["sequence"]): r for r in rows}
    items = [predictor.codec.parse(by_length[n]) for n in sorted(by_length)]
    assert {len(i) for i in items} >= {7, 29}
    feeds = {k: torch.from_numpy(v) for k, v in predictor.codec.encode(items).items()}
    assert parity_error(network, bundle / "model.onnx", feeds) < 1e-4
