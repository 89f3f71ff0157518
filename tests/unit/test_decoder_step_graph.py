"""The translation decoder step: its written-out cell and grouped attention compute what the network does."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.config import ModelConfig
from models.families.seq2seq.export import STEP_OUTPUTS, export_seq2seq
from models.families.seq2seq.network import BLOCK, DecoderStepGraph, Seq2Seq, top_candidates
from models.recurrent import time_mask
from tasks.common.subwords import EOS_ID

INPUTS, BEAM, SOURCE_VOCABULARY = 3, 4, 20


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_step_graph_and_its_onnx_export_compute_what_the_network_decodes(cell, tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, embedding_dim=8, hidden_size=12, bidirectional=True, dropout=0.0)
    network = Seq2Seq(config, SOURCE_VOCABULARY, 150).eval()  # 3 blocks, the last padded
    lengths = torch.tensor([5, 9, 2])
    with torch.no_grad():
        memory, keys, state = network.encode(torch.randint(3, SOURCE_VOCABULARY, (INPUTS, 9)), lengths)
    shared = {"memory": memory, "keys": keys, "source_mask": time_mask(lengths, 9)}  # one row per input
    feeds = {  # each input's hypotheses are consecutive rows, as the search feeds them
        "token": torch.randint(3, 150, (INPUTS * BEAM,)),
        "state": state.repeat_interleave(BEAM, 0) + torch.randn(INPUTS * BEAM, network.state_size),
        **shared,
        "candidates": torch.tensor(5),
    }
    rows = {name: tensor.repeat_interleave(BEAM, 0) for name, tensor in shared.items()}
    with torch.no_grad():
        features, next_state, attention = network.decode(feeds["token"][:, None], feeds["state"], **rows)
        log_probs = torch.log_softmax(network.output(features[:, 0]), dim=-1)
        graph = DecoderStepGraph(network, EOS_ID)(**feeds)
    expected = [*torch.topk(log_probs, 5), log_probs[:, EOS_ID], next_state, attention[:, 0]]
    export_seq2seq(network, tmp_path, SOURCE_VOCABULARY)
    session = ort.InferenceSession(str(tmp_path / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    exported = session.run(STEP_OUTPUTS, {name: value.numpy() for name, value in feeds.items()})
    for name, want, eager, onnx in zip(STEP_OUTPUTS, expected, graph, exported, strict=True):
        if name == "top_tokens":
            assert torch.equal(eager, want) and np.array_equal(onnx, want.numpy())
        else:
            np.testing.assert_allclose(eager.numpy(), want.numpy(), atol=1e-5, err_msg=name)
            np.testing.assert_allclose(onnx, want.numpy(), atol=1e-5, err_msg=name)


@pytest.mark.parametrize("count", [1, 11, 63, 64, 100])
def test_the_two_pass_top_k_finds_what_one_top_k_over_the_whole_row_finds(count):
    log_probs = torch.log_softmax(
        torch.randn(50, 63 * BLOCK, generator=torch.Generator().manual_seed(count)) * 3, -1
    )
    top, tokens = top_candidates(log_probs, torch.tensor(count))
    expected_top, expected_tokens = torch.topk(log_probs, count)
    assert torch.equal(tokens, expected_tokens) and torch.equal(top, expected_top)
