import shutil

import numpy as np
import torch

from models.export import trace_export
from models.families.language_model.network import LanguageModel
from models.families.language_model.sampler import sample_tokens
from serving.predictor import Predictor
from tasks.text_generation.sampling import next_tokens


def test_the_graphs_sampler_draws_what_the_numpy_sampler_draws():
    rng = np.random.default_rng(0)
    rows = 2000
    logits = (rng.normal(size=(rows, 40)) * rng.choice([0.5, 3.0], size=(rows, 1))).astype(np.float32)
    settings = [
        rng.choice([0.0, 1e-30, 0.5, 1.0, 2.0], rows),
        rng.choice([0, 1, 5, 39, 40, 100], rows),
        rng.choice([1.0, 0.9, 0.5, 1e-6], rows),
        rng.random(rows),
    ]
    expected = next_tokens(logits, *settings)
    actual = sample_tokens(torch.from_numpy(logits), *(torch.from_numpy(value) for value in settings))
    assert (actual.numpy() == expected).all()
    assert len(set(expected.tolist())) > 20  # it samples, not only the most likely token


def test_a_draw_beyond_the_rounded_kept_mass_still_takes_a_kept_token():
    logits = torch.from_numpy(np.random.default_rng(1).normal(size=(200, 6)).astype(np.float32))
    top_two = logits.topk(2).indices
    ones = torch.ones(200, dtype=torch.float64)
    chosen = sample_tokens(logits, ones, torch.full((200,), 2), ones, ones - 1e-12)
    assert ((chosen[:, None] == top_two).any(dim=1)).all()


class LogitsStart(torch.nn.Module):
    """The start graph as bundles registered before in-graph sampling have it: logits out."""

    def __init__(self, network: LanguageModel):
        super().__init__()
        self.network = network

    def forward(self, token):
        logits, state = self.network(token.unsqueeze(1))
        return logits[:, 0], self.network.pack(state)


class LogitsStep(LogitsStart):
    """The step graph as bundles registered before in-graph sampling have it."""

    def forward(self, token, state):
        logits, next_state = self.network(token.unsqueeze(1), self.network.unpack(state))
        return logits[:, 0], self.network.pack(next_state)


def test_a_bundle_whose_step_graphs_give_logits_generates_what_in_graph_sampling_does(
    text_generation_model, tmp_path
):
    _, _, bundle, network = text_generation_model
    older = tmp_path / "bundle"
    shutil.copytree(bundle, older)
    token = torch.full((4,), 1)
    with torch.no_grad():
        _, state = LogitsStart(network)(token)
    batch = {0: "batch"}
    for name, graph, example in (
        ("start", LogitsStart(network), {"token": token}),
        ("step", LogitsStep(network), {"token": token, "state": state}),
    ):
        axes = {axis: batch for axis in [*example, "logits", "next_state"]}
        trace_export(graph, older / f"{name}.onnx", example, ["logits", "next_state"], axes)
    assert "draw" not in [i.name for i in Predictor(older).sessions["step"].get_inputs()]
    prompts = [
        {"prompt": "the cat", "seed": 3},
        {"prompt": "a", "seed": 4, "temperature": 1.5, "top_k": 5},
        {"prompt": "a dog sat on", "seed": 5, "top_p": 0.8, "max_new_tokens": 30},
        {"prompt": "the", "temperature": 0},
    ]
    expected = Predictor(bundle).predict_rows(prompts)
    assert Predictor(older).predict_rows(prompts) == expected
    assert len({record["text"] for record in expected}) == 4
