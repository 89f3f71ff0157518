"""Every export path refuses a graph that disagrees with PyTorch, and leaves no file of it behind.

The fault is put into the graph where it is written (the traced export, the folded graph's builder,
each seq2seq graph), never into the comparison: skip a path's check and its test here fails.
"""

import math
from functools import partial
from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

import models.export
import models.families.classifier.family as classifier_family
import models.families.seq2seq.export as seq2seq_export
from models.config import ModelConfig
from models.export import ParityError, export_checked, export_graphs, token_batch
from models.families.classifier.folded import can_fold, folded_classifier_graph
from models.families.classifier.network import SequenceClassifier
from models.families.forecaster.network import Forecaster
from models.families.seq2seq.network import Seq2Seq
from tasks.common.subwords import EOS_ID

# Each kind of network below: its family and codec shape.
TOKENS = ("classifier", {"vocab_size": 30, "num_classes": 2})
SERIES = ("forecaster", {"input_size": 3, "horizon": 4})
SEQ2SEQ = ("seq2seq", {"vocab_size": 20, "target_vocab_size": 20})


def two_layer_token_classifier() -> SequenceClassifier:
    """A token classifier the folded graph does not cover: traced."""
    torch.manual_seed(0)
    config = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, num_layers=2, dropout=0.0)
    return SequenceClassifier(config, 2, vocab_size=30)


def series_forecaster() -> Forecaster:
    """A network over real-valued steps: traced."""
    torch.manual_seed(0)
    return Forecaster(ModelConfig(cell="lstm", embedding_dim=8, hidden_size=8, dropout=0.0), 3, horizon=4)


def folded_classifier(cell: str = "lstm") -> SequenceClassifier:
    """A one-layer, one-direction token classifier (the sentiment default): the folded Loop graph."""
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, embedding_dim=8, hidden_size=8, dropout=0.0)
    return SequenceClassifier(config, 2, vocab_size=30)


def seq2seq_network() -> Seq2Seq:
    """An untrained translator whose every choice is clear-cut (token 7 favoured): no near-ties to flip."""
    torch.manual_seed(0)
    config = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, bidirectional=True, dropout=0.0)
    network = Seq2Seq(config, SEQ2SEQ[1]["vocab_size"], SEQ2SEQ[1]["target_vocab_size"])
    with torch.no_grad():
        network.output.bias[7] += 3.0
    return network


def nudge(model: onnx.ModelProto, name: str, index: int, delta: float) -> onnx.ModelProto:
    """``model`` with one value of its initializer ``name`` moved by ``delta``."""
    (tensor,) = [t for t in model.graph.initializer if t.name == name]
    array = numpy_helper.to_array(tensor).copy()
    array.flat[index] += delta
    tensor.CopyFrom(numpy_helper.from_array(array, name))
    return model


def corrupt_traced(monkeypatch, module, graph: str, name: str, index: int, delta: float) -> list[str]:
    """Make ``module``'s ``trace_export`` nudge a weight of ``graph`` right after writing it.

    Returns:
        The graphs corrupted so far (to show that the fault was injected).
    """
    write, corrupted = module.trace_export, []

    def write_then_corrupt(network, path: Path, *args, **kwargs):
        write(network, path, *args, **kwargs)
        if path.name == graph:
            onnx.save(nudge(onnx.load(path), name, index, delta), path)
            corrupted.append(graph)

    monkeypatch.setattr(module, "trace_export", write_then_corrupt)
    return corrupted


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (two_layer_token_classifier, TOKENS),
        (series_forecaster, SERIES),
        (folded_classifier, TOKENS),
        (seq2seq_network, SEQ2SEQ),
    ],
    ids=["traced-tokens", "traced-series", "folded", "seq2seq"],
)
def test_the_networks_used_here_pass_parity_when_nothing_is_broken(make, kind, tmp_path):
    # So each refusal below is the fault's doing; and a folder not there yet is created.
    family, shape = kind
    assert export_graphs(family, make(), tmp_path / "new" / "graphs", shape) < 1e-5


@pytest.mark.parametrize(
    ("make", "kind"),
    [(two_layer_token_classifier, TOKENS), (folded_classifier, TOKENS), (seq2seq_network, SEQ2SEQ)],
    ids=["traced", "folded", "seq2seq"],
)
def test_the_tolerance_is_a_bound_the_parity_error_may_reach_but_not_exceed(make, kind, tmp_path):
    family, shape = kind
    error = export_graphs(family, make(), tmp_path / "first", shape)
    assert error > 0  # float32 rounding: PyTorch and onnxruntime never agree to the last bit here
    assert export_graphs(family, make(), tmp_path / "second", shape, tolerance=error) == error
    with pytest.raises(ParityError, match="exceeds tolerance|error .* \\(tolerance"):
        export_graphs(family, make(), tmp_path / "third", shape, tolerance=error / 2)
    assert not (tmp_path / "third").exists() or list((tmp_path / "third").iterdir()) == []


@pytest.mark.parametrize("build", [None, folded_classifier_graph], ids=["traced", "built"])
def test_export_checked_creates_the_folders_of_its_path(build, tmp_path):
    path = tmp_path / "new" / "graphs" / "model.onnx"
    examples = partial(token_batch, TOKENS[1]["vocab_size"])
    assert export_checked(folded_classifier(), path, examples, "logits", build=build) < 1e-5
    assert path.is_file()


@pytest.mark.parametrize(
    ("make", "kind"),
    [(two_layer_token_classifier, TOKENS), (series_forecaster, SERIES)],
    ids=["tokens", "series"],
)
def test_a_traced_export_that_disagrees_with_pytorch_is_refused_and_removed(
    make, kind, tmp_path, monkeypatch
):
    family, shape = kind
    network = make()
    assert not can_fold(network)
    corrupted = corrupt_traced(monkeypatch, models.export, "model.onnx", "head.bias", 0, 0.01)
    with pytest.raises(ParityError, match="exceeds tolerance"):
        export_graphs(family, network, tmp_path, shape)
    assert corrupted == ["model.onnx"] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_folded_export_that_disagrees_with_pytorch_is_refused_and_removed(cell, tmp_path, monkeypatch):
    network = folded_classifier(cell)
    assert can_fold(network)
    build, built = classifier_family.folded_classifier_graph, []

    def build_with_a_wrong_recurrent_weight(network):
        built.append(cell)
        return nudge(build(network), "R", 0, 0.5)  # W_hh[0, 0], used at every step

    monkeypatch.setattr(classifier_family, "folded_classifier_graph", build_with_a_wrong_recurrent_weight)
    with pytest.raises(ParityError, match="exceeds tolerance"):
        export_graphs(TOKENS[0], network, tmp_path, TOKENS[1])
    assert built == [cell] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("graph", "weight"),
    [("encoder.onnx", "network.bridge.bias"), ("decoder_step.onnx", "network.combine.bias")],
)
def test_a_seq2seq_export_with_either_graph_slightly_off_is_refused_and_both_removed(
    graph, weight, tmp_path, monkeypatch
):
    # Too slight to change a decoded token: only the comparison of encoder outputs and scores sees it.
    corrupted = corrupt_traced(monkeypatch, seq2seq_export, graph, weight, 0, 0.01)
    with pytest.raises(ParityError, match="seq2seq graphs: decoded tokens match, error"):
        export_graphs(SEQ2SEQ[0], seq2seq_network(), tmp_path, SEQ2SEQ[1])
    assert corrupted == [graph] and list(tmp_path.iterdir()) == []


def test_seq2seq_graphs_decoding_other_tokens_are_refused_at_any_tolerance(tmp_path, monkeypatch):
    # The ONNX decoder ends at once, PyTorch's does not: other tokens, whatever the score difference.
    corrupted = corrupt_traced(monkeypatch, seq2seq_export, "decoder_step.onnx", "output_bias", EOS_ID, 100.0)
    with pytest.raises(ParityError, match="decoded tokens differ"):
        export_graphs(SEQ2SEQ[0], seq2seq_network(), tmp_path, SEQ2SEQ[1], tolerance=math.inf)
    assert corrupted == ["decoder_step.onnx"] and list(tmp_path.iterdir()) == []


def test_seq2seq_graphs_whose_beam_search_alone_decodes_other_tokens_are_refused(tmp_path, monkeypatch):
    # Token 13 raised to just below the favoured token: greedy picks the same tokens, beam 3 does not.
    corrupted = corrupt_traced(monkeypatch, seq2seq_export, "decoder_step.onnx", "output_bias", 13, 2.5)
    with pytest.raises(ParityError, match="decoded tokens differ"):
        export_graphs(SEQ2SEQ[0], seq2seq_network(), tmp_path, SEQ2SEQ[1], tolerance=math.inf)
    assert corrupted == ["decoder_step.onnx"] and list(tmp_path.iterdir()) == []


def freeze_traced_axes(monkeypatch, module) -> None:
    """Make ``module``'s ``trace_export`` forget the dynamic axes: every axis keeps its example's size."""
    write = module.trace_export
    monkeypatch.setattr(
        module, "trace_export", lambda net, path, ex, outputs, axes: write(net, path, ex, outputs, {})
    )


def freeze_folded_batch(monkeypatch) -> None:
    """Make the folded graph's builder fix the batch axis of ``input_ids`` at 4."""
    build = classifier_family.folded_classifier_graph

    def build_frozen(network):
        model = build(network)
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
        return model

    monkeypatch.setattr(classifier_family, "folded_classifier_graph", build_frozen)


@pytest.mark.parametrize(
    ("make", "kind", "freeze"),
    [
        (two_layer_token_classifier, TOKENS, lambda m: freeze_traced_axes(m, models.export)),
        (folded_classifier, TOKENS, freeze_folded_batch),
        (seq2seq_network, SEQ2SEQ, lambda m: freeze_traced_axes(m, seq2seq_export)),
    ],
    ids=["traced", "folded", "seq2seq"],
)
def test_an_export_onnxruntime_cannot_run_at_unseen_shapes_is_refused_and_removed(
    make, kind, freeze, tmp_path, monkeypatch
):
    family, shape = kind
    freeze(monkeypatch)
    with pytest.raises(ParityError, match="onnxruntime cannot run .* at batch 7.*INVALID_ARGUMENT"):
        export_graphs(family, make(), tmp_path, shape)
    assert list(tmp_path.iterdir()) == []


LANGUAGE_MODEL = ("language_model", {"vocab_size": 20})


def language_model():
    from models.families.language_model.network import LanguageModel

    torch.manual_seed(0)
    config = ModelConfig(cell="lstm", embedding_dim=8, hidden_size=16, num_layers=2, dropout=0.0)
    return LanguageModel(config, LANGUAGE_MODEL[1]["vocab_size"])


def test_a_language_model_passes_parity_when_nothing_is_broken(tmp_path):
    error = export_graphs(LANGUAGE_MODEL[0], language_model(), tmp_path, LANGUAGE_MODEL[1])
    assert error <= 1e-4 and sorted(p.name for p in tmp_path.iterdir()) == ["start.onnx", "step.onnx"]


@pytest.mark.parametrize("graph", ["start.onnx", "step.onnx"])
def test_a_language_model_with_either_step_graph_slightly_off_is_refused_and_both_removed(
    graph, tmp_path, monkeypatch
):
    import models.families.language_model.export as language_model_export

    corrupted = corrupt_traced(monkeypatch, language_model_export, graph, "network.output.bias", 0, 0.01)
    with pytest.raises(ParityError, match="language model's graphs: greedy tokens match, error"):
        export_graphs(LANGUAGE_MODEL[0], language_model(), tmp_path, LANGUAGE_MODEL[1])
    assert corrupted == [graph] and list(tmp_path.iterdir()) == []


def test_a_language_model_choosing_other_tokens_is_refused_at_any_tolerance(tmp_path, monkeypatch):
    import models.families.language_model.export as language_model_export

    corrupted = corrupt_traced(
        monkeypatch, language_model_export, "step.onnx", "network.output.bias", 3, 100.0
    )
    with pytest.raises(ParityError, match="greedy tokens differ"):
        export_graphs(LANGUAGE_MODEL[0], language_model(), tmp_path, LANGUAGE_MODEL[1], tolerance=1e6)
    assert corrupted == ["step.onnx"] and list(tmp_path.iterdir()) == []
