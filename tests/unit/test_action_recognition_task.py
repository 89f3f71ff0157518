import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from task_models import GESTURE_CLASSES, fit_bundle, prepare_gestures

from models.export import parity_error
from serving.batch import run_batch
from serving.predictor import Predictor
from tasks import DataSourceError, InvalidRow, get_task


def test_variable_lengths_stratified_validation_and_train_only_scaling(gesture_files, tmp_path):
    _, prepared = prepare_gestures(gesture_files, tmp_path)
    stats = prepared.stats
    assert stats["rows_train"] + stats["rows_validation"] == 240 and stats["rows_test"] == 90
    assert (stats["min_length_train"], stats["max_length_train"]) == (8, 30)
    assert prepared.codec.labels == sorted(GESTURE_CLASSES) and prepared.codec.network_shape() == {
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
    _, prepared = prepare_gestures(gesture_files, tmp_path, max_length=50)
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
        prepare_gestures(gesture_files, tmp_path, class_names={"jump": "Jump"})
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


def test_small_model_learns_the_gestures_through_onnx(action_model):
    task, prepared, bundle = action_model
    predictor = Predictor(bundle)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    scores = task.metrics(predictor.predict_rows(rows), references)
    assert scores["accuracy"] > 0.9 and scores["macro_f1"] > 0.9
    assert {f"recall_{c}" for c in GESTURE_CLASSES} <= set(scores)


def test_batch_job_predicts_sequences_and_reports_bad_rows(action_model, tmp_path):
    task, prepared, bundle = action_model
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
    assert table[0]["label"] in GESTURE_CLASSES and set(table[0]["probabilities"]) == set(GESTURE_CLASSES)
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


def test_the_dtw_baseline_is_scored_by_the_tasks_metrics_and_skips_too_many_pairs(action_model, monkeypatch):
    from tasks.action_recognition import baseline
    from tasks.common.hooks import BaselineSkipped

    task, prepared, _ = action_model
    metrics = task.baselines(prepared)["1nn_dtw"]()
    assert {"accuracy", "macro_f1"} <= set(metrics) and metrics["accuracy"] > 0.6
    monkeypatch.setattr(baseline, "MAX_PAIRS", 10)
    with pytest.raises(BaselineSkipped, match="more than 10"):
        task.baselines(prepared)["1nn_dtw"]()


def test_the_minirocket_baseline_pads_unequal_lengths_and_skips_too_many_values(action_model, monkeypatch):
    from tasks.action_recognition import baseline
    from tasks.common.hooks import BaselineSkipped

    task, prepared, _ = action_model
    test, _ = baseline.sequences(prepared.splits["test"])
    assert len({s.shape[1] for s in test}) > 1  # JapaneseVowels: 7 to 29 steps
    metrics = task.baselines(prepared)["minirocket"]()
    assert {"accuracy", "macro_f1"} <= set(metrics) and metrics["accuracy"] > 0.8
    monkeypatch.setattr(baseline, "MAX_MINIROCKET_VALUES", 10)
    with pytest.raises(BaselineSkipped, match="more than 10"):
        task.baselines(prepared)["minirocket"]()
