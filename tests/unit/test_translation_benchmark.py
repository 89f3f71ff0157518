import numpy as np
import pytest
import torch

from benchmarks.torch_beam_search import torch_beam_search
from models.families.seq2seq.export import onnx_runner
from tasks.common.decoding import beam_search


@pytest.mark.parametrize("width", [1, 3])
@pytest.mark.parametrize("limit", [3, 12], ids=["cut at the step limit", "ended by the model"])
def test_the_pytorch_baseline_search_decodes_what_seqops_graphs_decode(translation_model, width, limit):
    task, prepared, bundle, network = translation_model
    codec = prepared.codec
    rows, _ = task.references(prepared.splits["test"], codec)
    feeds = codec.encode([codec.parse(row) for row in rows[:24]])
    limits = np.full(24, limit)
    expected = beam_search(
        onnx_runner(bundle),
        {"input_ids": feeds["input_ids"], "lengths": feeds["lengths"]},
        codec.bos,
        codec.eos,
        width,
        1.0,
        limits,
    )
    tokens, scores = torch_beam_search(
        network.eval(),
        torch.from_numpy(feeds["input_ids"]),
        torch.from_numpy(feeds["lengths"]),
        codec.bos,
        codec.eos,
        width,
        1.0,
        torch.from_numpy(limits),
    )
    assert tokens == expected.tokens and any(len(t) > 1 for t in tokens)
    assert np.abs(scores.numpy() - expected.scores).max() < 1e-4
