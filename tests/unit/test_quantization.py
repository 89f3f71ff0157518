"""int8 variants: quantised with onnxruntime, kept only when the accuracy gate accepts them."""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from task_models import train_bundle

from flows.evaluate import evaluate, quantize_int8
from serving.bundle import INT8_DIR
from serving.predictor import Predictor
from serving.quantize import discard_int8, int8_gate


@pytest.fixture
def bundle_copy(sentiment_bundle, tmp_path):
    return shutil.copytree(sentiment_bundle, tmp_path / "bundle")


@pytest.fixture(scope="module")
def bidirectional_bundle(sentiment_prepared, tmp_path_factory):
    """A bundle exported with onnxruntime's LSTM op and an embedding Gather (not the folded graph)."""
    model = {"embedding_dim": 16, "hidden_size": 16, "bidirectional": True}
    training = {"max_epochs": 6, "batch_size": 32, "learning_rate": 0.01, "patience": 6}
    return train_bundle(
        "sentiment", sentiment_prepared, tmp_path_factory.mktemp("bidirectional"), model, training
    )


def body_ops(graph):
    return {
        node.op_type for loop in graph.node if loop.op_type == "Loop" for node in loop.attribute[0].g.node
    }


def test_gate_counts_points_in_the_metric_direction():
    assert int8_gate("accuracy", 0.816, 0.812, 0.5, "max", 100).accepted  # 0.4 point lost
    refused = int8_gate("accuracy", 0.816, 0.810, 0.5, "max", 100)
    assert not refused.accepted and refused.loss_points == pytest.approx(0.6)
    assert "beyond the 0.5-point tolerance" in refused.reason
    assert int8_gate("mase", 0.52, 0.523, 0.5, "min", 100).accepted  # lower is better
    assert not int8_gate("mase", 0.52, 0.53, 0.5, "min", 100).accepted
    assert not int8_gate("bleu", 34.9, 34.3, 0.5, "max", 1).accepted  # BLEU is already in points
    assert int8_gate("bleu", 34.9, 35.2, 0.5, "max", 1).accepted  # int8 doing better is fine


def test_a_loss_of_exactly_the_tolerance_is_accepted_and_the_decision_records_its_numbers():
    decision = int8_gate("accuracy", 0.85, 0.84, 1.0, "max", 100)  # 1.0000000000000009 points in floats
    assert decision.accepted and "loss +1.00 points, within the 1-point tolerance" in decision.reason
    assert decision.to_json() == {
        "accepted": True,
        "metric": "accuracy",
        "fp32": 0.85,
        "int8": 0.84,
        "tolerance_points": 1.0,
        "loss_points": pytest.approx(1.0),
        "reason": decision.reason,
    }
    assert not int8_gate("accuracy", 0.85, 0.8399, 1.0, "max", 100).accepted


def test_a_refused_variant_is_removed_and_removing_it_again_is_harmless(tmp_path):
    (tmp_path / INT8_DIR).mkdir()
    (tmp_path / INT8_DIR / "model.onnx").write_bytes(b"graph")
    discard_int8(tmp_path)
    discard_int8(tmp_path)  # a retried evaluation discards what is already gone
    assert not (tmp_path / INT8_DIR).exists()


@pytest.mark.parametrize("graph_kind", ["folded", "lstm_op"])
def test_accepted_variant_is_served_and_agrees_with_fp32(
    graph_kind, bundle_copy, bidirectional_bundle, sentiment_prepared, tmp_path
):
    if graph_kind == "lstm_op":
        bundle_copy = shutil.copytree(bidirectional_bundle, tmp_path / "lstm_op")
    test = sentiment_prepared.splits["test"]
    fp32 = evaluate.fn("sentiment", bundle_copy, test).metrics
    decision, int8 = quantize_int8.fn("sentiment", bundle_copy, test, fp32, tolerance_points=100)
    assert decision.accepted and decision.int8 == int8["macro_f1"] and decision.fp32 == fp32["macro_f1"]
    assert json.loads((bundle_copy / "bundle.json").read_text())["int8"]["accepted"] is True
    graph = onnx.load(bundle_copy / "int8" / "model.onnx").graph
    if graph_kind == "folded":  # the recurrent MatMul inside the loop is the one quantised
        assert "MatMulInteger" in body_ops(graph) and "MatMul" not in body_ops(graph)
    else:
        assert "DynamicQuantizeLSTM" in {node.op_type for node in graph.node}
    texts = [{"text": row["text"]} for row in test]
    fp32_labels = [p["label"] for p in Predictor(bundle_copy).predict_rows(texts)]
    int8_labels = [p["label"] for p in Predictor(bundle_copy, quantize="int8").predict_rows(texts)]
    assert np.mean([a == b for a, b in zip(fp32_labels, int8_labels, strict=True)]) >= 0.95


def test_gate_refuses_a_model_that_int8_breaks(bidirectional_bundle, sentiment_prepared, tmp_path):
    # One outlier weight in the padding row leaves fp32 predictions untouched, but stretches the
    # embedding's single int8 scale so far that every real weight rounds to zero.
    bundle_copy = shutil.copytree(bidirectional_bundle, tmp_path / "bundle")
    model = onnx.load(bundle_copy / "model.onnx")
    gather = next(node for node in model.graph.node if node.op_type == "Gather")
    table = next(init for init in model.graph.initializer if init.name == gather.input[0])
    weights = numpy_helper.to_array(table).copy()
    weights[0, 0] = 1e4
    table.CopyFrom(numpy_helper.from_array(weights, table.name))
    onnx.save(model, bundle_copy / "model.onnx")
    test = sentiment_prepared.splits["test"]
    fp32 = evaluate.fn("sentiment", bundle_copy, test).metrics
    assert fp32["accuracy"] > 0.9

    decision, int8 = quantize_int8.fn("sentiment", bundle_copy, test, fp32, tolerance_points=0.5)

    assert not decision.accepted and int8["accuracy"] < 0.75
    assert decision.loss_points > 10
    assert not (bundle_copy / "int8").exists()
    assert json.loads((bundle_copy / "bundle.json").read_text())["int8"]["accepted"] is False
    with pytest.raises(ValueError, match="refused by the accuracy gate"):
        Predictor(bundle_copy, quantize="int8")


def test_model_without_variant_says_how_to_get_one(sentiment_bundle):
    with pytest.raises(ValueError, match="has no int8 variant"):
        Predictor(sentiment_bundle, quantize="int8")
