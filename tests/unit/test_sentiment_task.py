import json

import numpy as np
import pytest
from pydantic import ValidationError

from tasks import DataSourceError, InvalidRow, get_task
from tasks.sentiment.codec import UNK, SentimentCodec


@pytest.fixture
def task():
    return get_task("sentiment")


def test_prepares_sst_layout_with_all_splits(task, synthetic_data_dir, tmp_path):
    prepared = task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path))
    assert {s: len(prepared.splits[s]) for s in ("train", "validation", "test")} == {
        "train": 600,
        "validation": 120,
        "test": 120,
    }
    assert "sst2" in prepared.source
    row = prepared.splits["train"][0]
    assert row["input_ids"] and all(isinstance(i, int) for i in row["input_ids"])
    assert (tmp_path / "sentiment" / prepared.fingerprint / "tokenizer.json").is_file()


def test_second_prepare_is_served_from_cache(task, synthetic_data_dir, tmp_path):
    config = task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path)
    first = task.prepare(config)
    marker = tmp_path / "sentiment" / first.fingerprint / "stats.json"
    before = marker.stat().st_mtime_ns
    second = task.prepare(config)
    assert second.fingerprint == first.fingerprint
    assert marker.stat().st_mtime_ns == before  # nothing rebuilt
    assert second.splits["test"]["input_ids"] == first.splits["test"]["input_ids"]


def test_cache_key_changes_with_parameters(task, synthetic_data_dir, tmp_path):
    a = task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path, max_length=8))
    b = task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path, max_length=16))
    assert a.fingerprint != b.fingerprint
    assert max(len(ids) for ids in a.splits["train"]["input_ids"]) <= 8


def test_user_csv_and_jsonl_files_with_custom_columns(task, tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("review,stars\n" + "".join(f"good film {i},1\nbad film {i},0\n" for i in range(30)))
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"review": f"good {i}", "stars": 1}) + "\n" for i in range(5)))
    config = task.config(
        train_file=train,
        test_file=test,
        text_column="review",
        label_column="stars",
        cache_dir=tmp_path / "cache",
    )
    prepared = task.prepare(config)
    assert len(prepared.splits["train"]) + len(prepared.splits["validation"]) == 60
    assert len(prepared.splits["test"]) == 5
    assert prepared.source.startswith("files")


def test_bad_rows_in_sources_are_dropped_and_counted(task, tmp_path):
    train = tmp_path / "train.jsonl"
    rows = [{"text": "fine", "label": 1}, {"text": "", "label": 0}, {"text": "odd", "label": 7}] * 10
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepared = task.prepare(task.config(train_file=train, test_file=train, cache_dir=tmp_path / "c"))
    assert prepared.stats["dropped_test"] == 20
    assert len(prepared.splits["test"]) == 10


def test_missing_sources_name_every_alternative(task, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataSourceError) as error:
        task.prepare(task.config(data_dir=tmp_path, cache_dir=tmp_path))
    message = str(error.value)
    assert "data_dir" in message and "stanfordnlp/sst2" in message and "train_file" in message


def test_config_rejects_unknown_and_bad_fields(task):
    with pytest.raises(ValidationError, match="vocab_sise"):
        task.config(vocab_sise=10)
    with pytest.raises(ValidationError, match="max_length"):
        task.config(max_length=0)


def test_codec_parse_rejects_bad_rows_with_reasons(task, synthetic_data_dir, tmp_path):
    codec = task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path)).codec
    assert codec.parse({"text": "a great film"}) == "a great film"
    for row, reason in (
        ({}, "missing"),
        ({"text": 3}, "string"),
        ({"text": "  "}, "empty"),
        ({"text": None}, "string"),
    ):
        with pytest.raises(InvalidRow, match=reason):
            codec.parse(row)


def test_codec_round_trip_and_decode(task, synthetic_data_dir, tmp_path):
    codec = task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path)).codec
    codec.save(tmp_path / "bundle")
    loaded = SentimentCodec.load(tmp_path / "bundle")
    feeds = loaded.encode(["great film", "a really dull and boring plot", "unseenword"])
    assert feeds["input_ids"].shape == (3, 6) and feeds["lengths"].tolist() == [2, 6, 1]
    assert feeds["input_ids"][0, 2:].tolist() == [0, 0, 0, 0]  # right padding
    assert feeds["input_ids"][2, 0] == 1  # [UNK]
    decoded = loaded.decode({"logits": np.array([[2.0, 0.0], [-1.0, 3.0]])})
    assert [d["label"] for d in decoded] == ["negative", "positive"]
    assert decoded[1]["confidence"] == pytest.approx(1 / (1 + np.exp(-4)))
    assert sum(decoded[0]["probabilities"].values()) == pytest.approx(1.0)


def test_real_sst2_splits_have_published_sizes(task, shared_data_dir, tmp_path):
    prepared = task.prepare(task.config(data_dir=shared_data_dir, cache_dir=tmp_path))
    assert [len(prepared.splits[s]) for s in ("train", "validation", "test")] == [6920, 872, 1821]


def test_metrics_use_promotion_metric(task):
    predictions = [{"label_id": p, "probabilities": {"negative": 0.5, "positive": 0.5}} for p in (1, 1, 0, 0)]
    scores = task.metrics(predictions, [1, 0, 0, 0])
    assert scores["accuracy"] == 0.75
    assert task.promotion_metric in scores
    assert task.is_better(0.8, 0.7) and not task.is_better(0.7, 0.8) and task.is_better(0.1, None)


def test_limit_applies_to_every_split(task, synthetic_data_dir, tmp_path):
    prepared = task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=tmp_path, limit=50))
    assert all(len(prepared.splits[s]) == 50 for s in ("train", "validation", "test"))


def test_the_bpe_option_builds_subwords_that_spell_unseen_words_without_unknowns(
    task, synthetic_data_dir, tmp_path
):
    prepared = task.prepare(
        task.config(
            data_dir=synthetic_data_dir, cache_dir=tmp_path, tokenizer="bpe", vocab_size=60, min_frequency=1
        )
    )
    assert prepared.codec.network_shape()["vocab_size"] <= 60
    prepared.codec.save(tmp_path / "bundle")  # what a served model loads
    tokenizer = SentimentCodec.load(tmp_path / "bundle").tokenizer
    assert json.loads(tokenizer.to_str())["model"]["type"] == "BPE"
    unseen = "wonderfulboring"  # never in the training data, made of letters that are
    pieces = tokenizer.encode(unseen).tokens
    assert len(pieces) > 1 and UNK not in pieces and "".join(pieces) == unseen


def test_named_files_that_fail_never_fall_back_to_other_data(task, synthetic_data_dir, tmp_path):
    train = synthetic_data_dir / "sst2" / "stsa.binary.train"  # SST line format, any suffix
    with pytest.raises(DataSourceError, match="test_file"):
        task.prepare(task.config(train_file=train, data_dir=synthetic_data_dir, cache_dir=tmp_path))
    bad = tmp_path / "bad.train"
    bad.write_text("positive great film\n")
    with pytest.raises(DataSourceError, match=r"bad.train:1: expected"):
        task.prepare(task.config(train_file=bad, test_file=bad, cache_dir=tmp_path))
    prepared = task.prepare(task.config(train_file=train, test_file=train, cache_dir=tmp_path))
    assert prepared.source.startswith("files")


def test_the_tfidf_baseline_is_scored_by_the_tasks_metrics_and_skips_data_too_large(
    sentiment_prepared, monkeypatch
):
    import tasks.sentiment.baseline as baseline
    from tasks.common.hooks import BaselineSkipped

    task = get_task("sentiment")
    (name, fit_and_score), *others = task.baselines(sentiment_prepared).items()
    metrics = fit_and_score()
    assert name == "tfidf_logreg" and not others
    assert set(metrics) == {"accuracy", "precision", "recall", "macro_f1"} and metrics["macro_f1"] > 0.8
    monkeypatch.setattr(baseline, "MAX_TRAINING_ROWS", 10)
    with pytest.raises(BaselineSkipped, match="more than 10"):
        task.baselines(sentiment_prepared)["tfidf_logreg"]()


def test_a_cache_is_renamed_into_place_whole_and_a_second_writer_leaves_nothing_behind(
    sentiment_prepared, tmp_path
):
    from tasks.common.base import load_prepared, save_prepared

    task = get_task("sentiment")
    cache = tmp_path / "sentiment" / "key"
    save_prepared(sentiment_prepared, cache)
    before = sorted(p.name for p in cache.rglob("*"))
    save_prepared(sentiment_prepared, cache)  # as a parallel trial that finished second
    assert sorted(p.name for p in cache.rglob("*")) == before
    assert [p.name for p in cache.parent.iterdir()] == ["key"]  # no staging folder left
    loaded = load_prepared(cache, task, "synthetic", "key")
    assert loaded.splits["train"]["text"] == sentiment_prepared.splits["train"]["text"]
