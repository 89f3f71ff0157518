import onnx
import pytest
import torch

from models.config import ModelConfig
from models.export import export_graphs, parity_error, token_batch
from models.families.classifier.folded import can_fold
from models.families.classifier.network import SequenceClassifier


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_export_matches_pytorch_on_unseen_shapes(cell, bidirectional, tmp_path):
    torch.manual_seed(0)
    network = SequenceClassifier(
        ModelConfig(cell=cell, embedding_dim=12, hidden_size=10, num_layers=2, bidirectional=bidirectional),
        2,
        vocab_size=50,
    )
    error = export_graphs("classifier", network, tmp_path, {"vocab_size": 50, "num_classes": 2})
    assert error < 1e-5
    # and at a third shape: batch 1, a long sequence
    assert parity_error(network, tmp_path / "model.onnx", token_batch(50, batch=1, length=60, seed=5)) < 1e-4


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_folded_graph_matches_pytorch(cell, pooling, tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, embedding_dim=12, hidden_size=10, pooling=pooling, dropout=0.0)
    network = SequenceClassifier(config, 3, vocab_size=50)
    assert can_fold(network)
    error = export_graphs("classifier", network, tmp_path, {"vocab_size": 50, "num_classes": 3})
    assert error < 1e-5
    assert parity_error(network, tmp_path / "model.onnx", token_batch(50, batch=1, length=60, seed=5)) < 1e-5
    ops = {node.op_type for node in onnx.load(tmp_path / "model.onnx").graph.node}
    assert "Loop" in ops and not {"LSTM", "GRU", "RNN"} & ops  # the recurrence is the folded loop
    unfoldable = ModelConfig(cell=cell, embedding_dim=12, hidden_size=10, bidirectional=True)
    assert not can_fold(SequenceClassifier(unfoldable, 3, vocab_size=50))
    assert not can_fold(SequenceClassifier(config, 3, input_size=4))
