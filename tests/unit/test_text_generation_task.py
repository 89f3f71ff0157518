import json
import math

import numpy as np
import pytest
from text_models import prepare_text_generation

from serving.batch import run_batch
from serving.predictor import Predictor
from tasks import InvalidRow, get_task
from tasks.text_generation.sampling import SamplingSettings, generate, next_tokens, score


def settings(rows, max_new=5, temperature=1.0, top_k=0, top_p=1.0, seed=0):
    return SamplingSettings(
        *(np.full(rows, value) for value in (max_new, temperature, top_k, top_p)), np.arange(rows) + seed
    )


def bigram_runner(table):
    """A fake step graph whose logits depend on the last token only (and whose state counts steps)."""

    def run(graph, feeds):
        state = feeds.get("state", np.zeros((len(feeds["token"]), 1), np.float32))
        return {"logits": table[feeds["token"]], "next_state": state + 1}

    return run


def test_greedy_top_k_one_and_a_tiny_nucleus_all_take_the_most_likely_token():
    logits = np.array([[0.1, 2.0, 0.5], [3.0, 0.0, -1.0]])
    draws = np.random.default_rng(1).random(2)
    for temperature, top_k, top_p in ((0.0, 0, 1.0), (1.0, 1, 1.0), (1.0, 0, 1e-6)):
        chosen = next_tokens(logits, np.full(2, temperature), np.full(2, top_k), np.full(2, top_p), draws)
        assert chosen.tolist() == [1, 0]


def test_top_k_never_draws_outside_the_k_most_likely_tokens():
    logits = np.log(np.array([[0.4, 0.3, 0.2, 0.1]]))
    draws = np.random.default_rng(0).random(300)
    chosen = {
        int(next_tokens(logits, np.ones(1), np.array([2]), np.ones(1), draws[i : i + 1])[0])
        for i in range(300)
    }
    assert chosen == {0, 1}


def test_a_rows_text_depends_on_its_seed_not_on_the_rows_beside_it():
    table = np.random.default_rng(0).normal(size=(6, 6))
    run = bigram_runner(table)
    alone, _ = generate(run, [np.array([1, 2])], settings(1, max_new=20, seed=7))
    batched, _ = generate(
        run, [np.array([3]), np.array([1, 2]), np.array([4, 4, 4])], settings(3, max_new=20, seed=6)
    )
    assert batched[1] == alone[0] and len(alone[0]) == 20
    again, _ = generate(run, [np.array([1, 2])], settings(1, max_new=20, seed=7))
    assert again == alone


def test_prompts_of_different_lengths_are_fed_in_full_before_sampling():
    table = np.full((5, 5), -10.0)
    table[np.arange(5), (np.arange(5) + 1) % 5] = 10.0  # the next token is always token + 1
    run = bigram_runner(table)
    out, _ = generate(run, [np.array([0]), np.array([2, 4, 1])], settings(2, max_new=3, temperature=0.0))
    assert out == [[1, 2, 3], [2, 3, 4]]


def test_scoring_sums_the_negative_log_probability_of_every_token_after_the_first():
    table = np.log(np.array([[0.5, 0.5, 1e-9], [0.25, 0.25, 0.5], [1.0, 1e-9, 1e-9]]))
    nats = score(bigram_runner(table), [np.array([0, 1, 2]), np.array([2, 0])])
    assert nats == pytest.approx([-math.log(0.5) - math.log(0.5), -math.log(1.0)], abs=1e-6)


def test_codec_rows_unknown_characters_and_bad_fields(text_file, tmp_path):
    _, prepared = prepare_text_generation(text_file, tmp_path)
    codec = prepared.codec
    item = codec.parse({"prompt": "the~cat", "max_new_tokens": 4, "seed": 3})
    assert item["unknown"] == 1 and len(item["ids"]) == 6  # "~" never occurs in training: left out, counted
    cases = [
        ({}, "either 'prompt'"),
        ({"prompt": "a", "text": "b"}, "either 'prompt'"),
        ({"prompt": 5}, "must be a string"),
        ({"prompt": "~~"}, "no character the model knows"),
        ({"text": "a"}, "needs at least 2"),
        ({"prompt": "the", "temperature": -1}, "temperature"),
        ({"prompt": "the", "max_new_tokens": 0}, "max_new_tokens"),
        ({"prompt": "the", "top_p": 0}, "top_p"),
        ({"prompt": "the", "seed": 1.5}, "integer"),
        ({"prompt": "the", "top_k": True}, "integer"),
        ({"prompt": "\ud800"}, "lone surrogate"),
    ]
    for row, reason in cases:
        with pytest.raises(InvalidRow, match=reason):
            codec.parse(row)


def test_prepare_splits_contiguously_and_fits_the_vocabulary_on_training_text(text_file, tmp_path):
    task, prepared = prepare_text_generation(text_file, tmp_path)
    text = text_file.read_text()
    assert prepared.stats["characters"] == len(text)
    assert set(prepared.codec.settings["characters"]) == set(text[: int(len(text) * 0.8)])
    window = prepared.splits["train"][0]["input_ids"]
    assert len(window) == 33 and prepared.codec.text(window) == text[:33]
    assert prepared.stats["test_unknown_characters"] == 1
    with pytest.raises(ValueError, match="summing to 1"):
        task.config(split_fractions=[0.5, 0.2, 0.2])


def test_the_model_learns_scores_and_generates_the_same_through_onnx_and_pytorch(
    text_generation_model, tmp_path
):
    task, prepared, bundle, network = text_generation_model
    predictor = Predictor(bundle)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    metrics = task.metrics(predictor.predict_rows(rows), references)
    uniform = math.log(prepared.codec.network_shape()["vocab_size"])
    assert metrics["nats_per_character"] < 0.6 * uniform  # far better than guessing
    assert metrics["bits_per_character"] == pytest.approx(metrics["nats_per_character"] / math.log(2))

    from models.family import get_family

    codec, torch_run = predictor.codec, get_family("language_model").torch_runner(network)
    prompts = [{"prompt": "the cat", "seed": 1}, {"prompt": "a dog sat", "temperature": 0}]
    onnx_texts = [p["text"] for p in predictor.predict_rows(prompts)]
    feeds = codec.encode([codec.parse(row) for row in prompts])
    torch_texts = [p["text"] for p in codec.decode(codec.infer(torch_run, feeds))]
    assert onnx_texts == torch_texts and all(len(t) == codec.settings["max_new_tokens"] for t in onnx_texts)


def test_batch_job_continues_prompts_scores_texts_and_records_bad_rows(text_generation_model, tmp_path):
    _, _, bundle, _ = text_generation_model
    rows = [{"prompt": "the cat", "max_new_tokens": 12, "seed": 4}, {"text": "the cat sat"}, {"prompt": ""}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = run_batch(
        bundle, source, tmp_path / "out.jsonl", show_progress=False, options={"temperature": "0.5"}
    )
    assert (report.predicted, report.errors) == (2, 1)
    first, second = (json.loads(line) for line in (tmp_path / "out.jsonl").open())
    assert len(first["text"]) == 12 and second["characters"] == 10 and second["bits_per_character"] > 0
    again = run_batch(
        bundle, source, tmp_path / "again.jsonl", show_progress=False, options={"temperature": "0.5"}
    )
    assert again.predicted == 2
    assert (tmp_path / "again.jsonl").read_text() == (
        tmp_path / "out.jsonl"
    ).read_text()  # seeded: reproducible


def test_options_are_checked_before_any_work(text_generation_model, tmp_path):
    _, _, bundle, _ = text_generation_model
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": "the"}) + "\n")
    from serving.errors import JobError

    for options, reason in (
        ({"top_p": "0"}, "top_p"),
        ({"beam_width": "2"}, "not an option"),
        ({"seed": "-1"}, "seed"),
    ):
        with pytest.raises(JobError, match=reason):
            run_batch(bundle, source, tmp_path / "out.jsonl", show_progress=False, options=options)
    assert not (tmp_path / "out.jsonl").exists()


def test_the_task_is_registered_with_its_family():
    task = get_task("text_generation")
    assert task.family == "language_model" and task.promotion_direction == "min"


def test_training_samples_and_diagnostics_continue_the_sample_prompt(text_generation_model):
    from models.family import get_family
    from tasks.common.hooks import Evaluation, Table

    task, prepared, bundle, network = text_generation_model
    samples = task.training_samples(get_family("language_model").torch_runner(network), prepared.codec)
    assert samples["sample"].startswith("the cat") and len(samples["sample"]) == len("the cat") + 16
    predictor = Predictor(bundle)
    (table,) = task.diagnostics(Evaluation(predictor.codec, None, [], None, predictor.predict_rows, "t"))
    assert isinstance(table, Table) and table.columns["temperature"][:3] == [0.0, 0.5, 1.0]
    assert all(isinstance(text, str) and text for text in table.columns["continuation"][3:])


def test_the_bpe_option_round_trips_text_and_counts_characters_not_tokens(text_file, tmp_path):
    from tasks.text_generation.codec import GenerationCodec

    _, prepared = prepare_text_generation(text_file, tmp_path, tokenizer="bpe", vocab_size=60)
    codec = GenerationCodec.load(tmp_path / "text_generation" / prepared.fingerprint)
    assert codec.tokenizer is not None and codec.network_shape()["vocab_size"] <= 60
    ids, unknown = codec.ids("the cat sat on the mat.")
    assert codec.text(ids) == "the cat sat on the mat." and unknown == 0
    item = codec.parse({"text": "the cat sat on the mat."})
    assert item["characters"] == len("the cat sat on the mat.") - len(codec.text(ids[:1]))
    assert len(ids) < len("the cat sat on the mat.")  # pieces, not characters


def test_table_rows_csv_fields_and_extreme_settings_are_read_or_refused_never_a_crash(text_file, tmp_path):
    _, prepared = prepare_text_generation(text_file, tmp_path)
    codec = prepared.codec
    assert (
        codec.parse({"prompt": "the cat", "text": None, "seed": float("nan")})["seed"] is None
    )  # a table's gaps
    assert codec.parse({"prompt": "the cat", "seed": "3", "temperature": ""})["seed"] == 3  # CSV fields
    for row, reason in (
        ({"prompt": "the", "seed": float("nan"), "top_k": float("inf")}, "outside"),
        ({"prompt": "the", "temperature": 10**400}, "outside"),
        ({"prompt": "the", "seed": "three"}, "an integer"),
    ):
        with pytest.raises(InvalidRow, match=reason):
            codec.parse(row)


def test_a_tiny_temperature_is_greedy_and_non_finite_logits_make_the_row_an_error(text_file, tmp_path):
    logits = np.array([[0.1, 2.0, 0.5]])
    assert next_tokens(logits, np.array([1e-320]), np.zeros(1, int), np.ones(1), np.array([0.9])) == [1]
    _, prepared = prepare_text_generation(text_file, tmp_path)
    codec, size = prepared.codec, prepared.codec.network_shape()["vocab_size"]

    def broken(graph, feeds):
        batch = len(feeds["token"])
        return {"logits": np.full((batch, size), np.nan, np.float32), "next_state": np.zeros((batch, 1))}

    from serving.predictor import finite_items

    outputs = codec.infer(broken, codec.encode([codec.parse({"prompt": "the", "max_new_tokens": 3})]))
    assert not finite_items(outputs, 1)[0]


def test_a_bpe_continuation_keeps_the_space_between_prompt_and_text(text_file, tmp_path):
    _, prepared = prepare_text_generation(text_file, tmp_path, tokenizer="bpe", vocab_size=60)
    codec = prepared.codec
    prompt, rest = codec.ids("the cat")[0], codec.ids("the cat sat")[0]
    assert codec.continuation(prompt, rest[len(prompt) :]) == " sat"


def test_the_ngram_baseline_is_a_distribution_and_scores_like_the_networks(
    text_generation_model, monkeypatch
):
    from tasks.common.hooks import BaselineSkipped
    from tasks.text_generation import baseline
    from tasks.text_generation.baseline import NGramModel

    tokens = np.array([0, 1, 2, 0, 1, 1, 2, 0, 2, 2, 1, 0])
    model = NGramModel(tokens, order=3, vocabulary=4)
    for context in (0, 3):  # a seen context, and one never seen (backs off to the unigrams)
        assert sum(math.exp(-model.nats(np.array([context, t]))) for t in range(4)) == pytest.approx(1.0)
    probabilities = [
        math.exp(-model.nats(np.array([0, 1, t]))) / math.exp(-model.nats(np.array([0, 1]))) for t in range(4)
    ]
    assert sum(probabilities) == pytest.approx(1.0)

    task, prepared, _, _ = text_generation_model
    metrics = task.baselines(prepared)["ngram"]()
    assert metrics["nats_per_character"] < 0.6 * math.log(prepared.codec.network_shape()["vocab_size"])
    monkeypatch.setattr(baseline, "MAX_TRAINING_TOKENS", 100)
    with pytest.raises(BaselineSkipped, match="more than 100"):
        task.baselines(prepared)["ngram"]()
