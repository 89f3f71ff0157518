"""ONNX export of a ``LanguageModel`` as two step graphs, checked token for token on a greedy rollout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.export import ONNXRUNTIME_ERRORS, ParityError, trace_export
from models.families.language_model.network import LanguageModel, StartGraph, StepGraph
from tasks.common.base import GraphRunner
from tasks.common.errors import first_line
from tasks.text_generation.sampling import greedy_sampling

GRAPHS = ("start", "step")
OUTPUTS = ["logits", "next_state", "next_token"]
NEAR_TIE = 1e-3  # a best logit leading the next by less may be chosen either way by a correct graph


def torch_runner(network: LanguageModel) -> GraphRunner:
    """``run(graph, feeds)`` backed by the PyTorch network (eval mode, no gradients)."""
    network.eval()
    graphs = {"start": StartGraph(network), "step": StepGraph(network)}

    def run(graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            results = graphs[graph](
                **{name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in feeds.items()}
            )
        return {name: tensor.numpy() for name, tensor in zip(OUTPUTS, results, strict=True)}

    return run


def onnx_runner(directory: Path) -> GraphRunner:
    """``run(graph, feeds)`` backed by onnxruntime sessions of ``start.onnx`` and ``step.onnx``."""
    sessions = {
        name: ort.InferenceSession(str(directory / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        for name in GRAPHS
    }
    return lambda graph, feeds: dict(zip(OUTPUTS, sessions[graph].run(OUTPUTS, feeds), strict=True))


def export_language_model(network: LanguageModel, directory: Path) -> None:
    """Write ``start.onnx`` and ``step.onnx`` with a dynamic batch axis (traced at batch 4)."""
    network.eval()
    directory.mkdir(parents=True, exist_ok=True)
    token = torch.full((4,), 1, dtype=torch.long)
    sampling = {name: torch.from_numpy(value) for name, value in greedy_sampling(4).items()}
    start = {"token": token, **sampling}
    with torch.no_grad():
        _, state, _ = StartGraph(network)(**start)
    step = {"token": token, "state": state, **sampling}
    for name, graph, example in (("start", StartGraph(network), start), ("step", StepGraph(network), step)):
        axes = {axis: {0: "batch"} for axis in [*example, *OUTPUTS]}
        trace_export(graph, directory / f"{name}.onnx", example, OUTPUTS, axes)


def rollout(run: GraphRunner, tokens: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Feed ``tokens`` (batch, steps) through the graphs (greedy sampling); every step's outputs."""
    sampling = greedy_sampling(len(tokens))
    outputs = [run("start", {"token": tokens[:, 0], **sampling})]
    for step in range(1, tokens.shape[1]):
        feeds = {"token": tokens[:, step], "state": outputs[-1]["next_state"], **sampling}
        outputs.append(run("step", feeds))
    return outputs


def greedy_tokens(run: GraphRunner, first: np.ndarray, steps: int) -> np.ndarray:
    """``first`` and then each step's most likely token (the graph's own choice), ``(batch, steps + 1)``."""
    sampling = greedy_sampling(len(first))
    tokens, outputs = [first], run("start", {"token": first, **sampling})
    for _ in range(steps):
        tokens.append(outputs["next_token"])
        outputs = run("step", {"token": tokens[-1], "state": outputs["next_state"], **sampling})
    return np.stack(tokens, axis=1)


def export_language_model_checked(
    network: LanguageModel, directory: Path, vocab_size: int, tolerance: float
) -> float:
    """Export both graphs, then feed both engines PyTorch's 30-step greedy rollout from 7 random tokens.

    Both see the same tokens, so their logits and states are compared step for step; whatever the
    tolerance, onnxruntime must also pick PyTorch's token wherever that is no near tie (``NEAR_TIE``).

    Returns:
        The largest difference between PyTorch and onnxruntime logits and states along the rollout.

    Raises:
        ParityError: If a clear choice differs, the difference exceeds ``tolerance`` or onnxruntime
            cannot run the graphs; the graphs are removed.
    """
    export_language_model(network, directory)
    first = torch.randint(0, vocab_size, (7,), generator=torch.Generator().manual_seed(1)).numpy()
    reference = torch_runner(network)
    tokens = greedy_tokens(reference, first, 30)
    try:
        expected, actual = rollout(reference, tokens), rollout(onnx_runner(directory), tokens)
    except ONNXRUNTIME_ERRORS as failure:
        remove_graphs(directory)
        raise ParityError(
            f"onnxruntime cannot run the language model's graphs at batch 7: {first_line(failure)}"
        ) from failure
    error = max(
        float(np.abs(ours[name] - theirs[name]).max())
        for ours, theirs in zip(expected, actual, strict=True)
        for name in ("logits", "next_state")
    )
    same = all(
        clear_choices_agree(ours["logits"], ours["next_token"], theirs["next_token"])
        for ours, theirs in zip(expected, actual, strict=True)
    )
    if not same or not error <= tolerance:
        remove_graphs(directory)
        raise ParityError(
            f"ONNX parity failed for the language model's graphs: greedy tokens "
            f"{'match' if same else 'differ'}, error {error:.2e} (tolerance {tolerance:.0e})"
        )
    return error


def clear_choices_agree(logits: np.ndarray, expected: np.ndarray, actual: np.ndarray) -> bool:
    """Whether both graphs chose the same token in each row whose best logit is no near tie (``NEAR_TIE``)."""
    top_two = np.sort(logits, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > NEAR_TIE
    return bool((expected == actual)[clear].all())


def remove_graphs(directory: Path) -> None:
    """Delete ``start.onnx`` and ``step.onnx`` from ``directory`` (those present)."""
    for name in GRAPHS:
        (directory / f"{name}.onnx").unlink(missing_ok=True)
