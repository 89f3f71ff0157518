import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from task_models import prepare_translation

from models.config import ModelConfig
from models.export import trace_export
from models.families.seq2seq.export import onnx_runner, torch_runner
from models.families.seq2seq.network import Seq2Seq
from models.recurrent import time_mask
from serving.batch import run_batch
from serving.predictor import Predictor
from serving.quantize import quantize_graphs
from tasks import InvalidRow, get_task
from tasks.common.decoding import beam_search


def test_tokenizers_trained_on_train_and_long_pairs_filtered_and_counted(translation_corpus, tmp_path):
    _, prepared = prepare_translation(translation_corpus, tmp_path)
    stats = prepared.stats
    assert (stats["filtered_train"], stats["pairs_train"]) == (5, 1995)
    assert (stats["filtered_test"], stats["pairs_test"]) == (0, 100)  # test pairs are never dropped
    codec = prepared.codec
    ids = codec.target_tokenizer.encode("three one two").ids
    assert codec.target_tokenizer.decode(ids) == "three one two"  # detokenises exactly


def test_codec_rejects_bad_rows_and_truncates_or_rejects_long_ones(translation_corpus, tmp_path):
    _, prepared = prepare_translation(translation_corpus, tmp_path, max_input_tokens=4)
    codec = prepared.codec
    for row, reason in (
        ({}, "must be a string"),
        ({"text": 5}, "must be a string"),
        ({"text": "  "}, "empty"),
    ):
        with pytest.raises(InvalidRow, match=reason):
            codec.parse(row)
    ids, truncated = codec.parse({"text": "ka lo mi nu pe ri"})
    assert len(ids) == 4 and truncated
    _, strict = prepare_translation(translation_corpus, tmp_path, max_input_tokens=4, overlong="reject")
    with pytest.raises(InvalidRow, match="more than max_input_tokens 4"):
        strict.codec.parse({"text": "ka lo mi nu pe ri"})
    with pytest.raises(ValueError, match="must differ"):
        get_task("translation").config(source_language="en", target_language="en")


def ranked_in_the_graph(feeds, log_probabilities, eos):
    """The outputs of a decoder step that ranks its own candidates, as exported graphs do."""
    best_first = np.argsort(-log_probabilities, axis=1, kind="stable")[:, : int(feeds["candidates"])]
    return {
        "top_log_probs": np.take_along_axis(log_probabilities, best_first, 1),
        "top_tokens": best_first,
        "eos_log_prob": log_probabilities[:, eos],
    }


@pytest.mark.parametrize("step_contract", ["candidates", "logits (graphs exported before)"])
def test_beam_search_finds_the_sequence_greedy_misses(step_contract):
    """Token 5 looks best first (0.6) but is followed by doubt; token 6 (0.4) is followed by a sure end."""
    eos = 3

    def run(graph, feeds):
        if graph == "encoder":
            batch = len(feeds["lengths"])
            return {
                "memory": np.zeros((batch, 2, 1)),
                "keys": np.zeros((batch, 2, 1)),
                "state": np.zeros((batch, 1)),
            }
        previous = feeds["token"]
        # Graphs that rank read an input's memory once; older ones want it once per hypothesis.
        assert len(feeds["memory"]) == (1 if step_contract == "candidates" else len(previous))
        probabilities = np.full((len(previous), 8), 1e-6)
        probabilities[previous == 2, 5], probabilities[previous == 2, 6] = 0.6, 0.4
        probabilities[previous == 5, 4], probabilities[previous == 5, 7] = 0.55, 0.45
        probabilities[previous == 6, eos] = 1.0
        probabilities[previous == 4, eos] = 1.0
        probabilities[previous == 7, eos] = 1.0
        ranked = (
            ranked_in_the_graph(feeds, np.log(probabilities), eos)
            if step_contract == "candidates"
            else {"logits": np.log(probabilities)}
        )
        return ranked | {"next_state": feeds["state"], "attention": np.full((len(previous), 2), 0.5)}

    feeds = {"input_ids": np.array([[7, 8]]), "lengths": np.array([2])}
    greedy = beam_search(run, feeds, 2, eos, beam_width=1, length_penalty=0.0, max_steps=np.array([5]))
    beam = beam_search(run, feeds, 2, eos, beam_width=3, length_penalty=0.0, max_steps=np.array([5]))
    assert greedy.tokens == [[5, 4]] and greedy.scores[0] == pytest.approx(np.log(0.6 * 0.55), abs=1e-4)
    assert beam.tokens == [[6]] and beam.scores[0] == pytest.approx(np.log(0.4), abs=1e-4)


def test_a_vocabulary_smaller_than_the_beam_decodes_alike_under_both_step_contracts():
    eos, vocabulary, inputs = 3, 5, 3
    rng = np.random.default_rng(0)
    table = np.log(rng.dirichlet(np.ones(vocabulary), size=(vocabulary, inputs)))  # (previous, input, next)

    def run(graph, feeds, contract):
        if graph == "encoder":
            batch = len(feeds["lengths"])
            return {
                "memory": np.zeros((batch, 2, 1)),
                "keys": np.zeros((batch, 2, 1)),
                "state": np.eye(batch),
            }
        log_probabilities = table[feeds["token"], feeds["state"].argmax(1)]  # the state names the input
        ranked = ranked_in_the_graph(feeds, log_probabilities, eos) if contract == "candidates" else {}
        return (ranked or {"logits": log_probabilities}) | {
            "next_state": feeds["state"],
            "attention": np.full((len(feeds["token"]), 2), 0.5),
        }

    feeds = {"input_ids": np.ones((inputs, 2), dtype=np.int64), "lengths": np.full(inputs, 2)}
    limits = np.array([2, 6, 9])
    found = [
        beam_search(lambda g, f, c=contract: run(g, f, c), feeds, 2, eos, 7, 1.0, limits)
        for contract in ("candidates", "logits")
    ]
    assert found[0].tokens == found[1].tokens and np.allclose(found[0].scores, found[1].scores)
    assert all(len(tokens) <= limit - 1 for tokens, limit in zip(found[0].tokens, limits, strict=True))
    assert np.isfinite(found[0].scores).all()


def test_a_fully_padded_source_row_gives_no_nan():
    network = Seq2Seq(ModelConfig(cell="lstm", embedding_dim=8, hidden_size=8, bidirectional=True), 20, 20)
    network.eval()
    input_ids, lengths = torch.tensor([[5, 6, 7], [0, 0, 0]]), torch.tensor([3, 1])
    memory, keys, state = network.encode(input_ids, lengths)
    mask = time_mask(lengths, 3)
    mask[1] = False  # nothing to attend to
    features, _, attention = network.decode(torch.tensor([[2], [2]]), state, memory, keys, mask)
    logits = network.output(features)
    assert torch.isfinite(logits).all() and torch.isfinite(attention).all()


def test_training_scores_real_target_tokens_alone_with_the_logits_of_the_whole_batch():
    network = Seq2Seq(ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0), 20, 30)
    source, lengths = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2])
    targets = torch.tensor([[1, 4, 5, 6, 2], [1, 7, 2, 0, 0]])
    scored = targets[:, 1:] != 0
    every_step = network(source, lengths, targets[:, :-1])
    real_steps = network(source, lengths, targets[:, :-1], scored)
    assert real_steps.shape == (6, 30)
    torch.testing.assert_close(real_steps, every_step[scored])


def test_the_toy_translation_is_learned_through_onnx(translation_model):
    task, prepared, bundle, _ = translation_model
    predictor = Predictor(bundle)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    beam = task.metrics(predictor.predict_rows(rows), references)
    greedy = task.metrics(predictor.predict_rows(rows, beam_width=1), references)
    assert beam["bleu"] > 80 and greedy["bleu"] > 80 and beam["chrf"] > 80


def test_onnx_and_pytorch_decode_the_same_tokens_on_real_sentences(translation_model):
    task, prepared, bundle, network = translation_model
    rows, _ = task.references(prepared.splits["test"], prepared.codec)
    feeds = prepared.codec.encode([prepared.codec.parse(r) for r in rows[:16]])
    feeds = {"input_ids": feeds["input_ids"], "lengths": feeds["lengths"]}
    codec = prepared.codec
    decoded = [
        beam_search(run, feeds, codec.bos, codec.eos, 3, 1.0, np.full(16, 20))
        for run in (torch_runner(network), onnx_runner(bundle))
    ]
    assert decoded[0].tokens == decoded[1].tokens
    assert np.abs(decoded[0].scores - decoded[1].scores).max() < 1e-4


def test_the_int8_copy_quantises_the_output_layer_and_still_translates(translation_model, tmp_path):
    task, prepared, bundle, _ = translation_model
    copy = shutil.copytree(bundle, tmp_path / "bundle")
    shutil.rmtree(copy / "int8", ignore_errors=True)
    quantize_graphs(copy, prepared.codec.graphs)
    step = onnx.load(copy / "int8" / "decoder_step.onnx")
    assert "output_weight_quantized" in {weight.name for weight in step.graph.initializer}
    predictor = Predictor(copy, quantize="int8", require_gate=False)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    assert task.metrics(predictor.predict_rows(rows), references)["bleu"] > 80


class LogitsDecoderStep(torch.nn.Module):
    """The decoder step as bundles registered before the in-graph search have it: logits out."""

    def __init__(self, network: Seq2Seq):
        super().__init__()
        self.network = network

    def forward(self, token, state, memory, keys, source_mask):
        features, next_state, attention = self.network.decode(
            token.unsqueeze(1), state, memory, keys, source_mask
        )
        return self.network.output(features)[:, 0], next_state, attention[:, 0]


def test_a_bundle_whose_decoder_step_gives_logits_translates_as_the_in_graph_search_does(
    translation_model, tmp_path
):
    task, prepared, bundle, network = translation_model
    older = tmp_path / "bundle"
    shutil.copytree(bundle, older)
    example = {"input_ids": torch.randint(3, 20, (4, 12)), "lengths": torch.full((4,), 12)}
    with torch.no_grad():
        memory, keys, state = network.encode(**example)
    step = {"token": torch.full((4,), 5), "state": state, "memory": memory, "keys": keys}
    step["source_mask"] = time_mask(example["lengths"], 12)
    batch, source = {0: "batch"}, {0: "batch", 1: "source"}
    axes = {"token": batch, "state": batch, "memory": source, "keys": source, "source_mask": source}
    axes |= {"logits": batch, "next_state": batch, "attention": source}
    trace_export(
        LogitsDecoderStep(network),
        older / "decoder_step.onnx",
        step,
        ["logits", "next_state", "attention"],
        axes,
    )
    assert "candidates" not in [i.name for i in Predictor(older).sessions["decoder_step"].get_inputs()]
    rows, _ = task.references(prepared.splits["test"], prepared.codec)
    for width in (1, 3):
        expected = Predictor(bundle).predict_rows(rows, beam_width=width)
        predicted = Predictor(older).predict_rows(rows, beam_width=width)
        assert [p["translation"] for p in predicted] == [p["translation"] for p in expected]
        assert np.allclose([p["score"] for p in predicted], [p["score"] for p in expected], atol=1e-4)


def test_batch_job_translates_rows_and_reports_bad_ones(translation_model, tmp_path):
    _, _, bundle, _ = translation_model
    rows = [{"text": "ka lo mi"}, {"text": ""}, {"text": 42}, {"id": 4}, {"text": "tu so"}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_batch(bundle, source, tmp_path / "out.jsonl", show_progress=False)
    assert (summary.predicted, summary.errors) == (2, 3)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["translation"] for o in out] == ["three two one", "seven eight"]
    assert all(o["score"] <= 0 and o["source_truncated"] is False for o in out)
    greedy = run_batch(
        bundle, source, tmp_path / "greedy.jsonl", show_progress=False, options={"beam_width": "1"}
    )
    assert greedy.predicted == 2
