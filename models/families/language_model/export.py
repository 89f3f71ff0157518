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

GRAPHS = ("start", "step")
OUTPUTS = ["logits", "next_state"]


def torch_runner(network: LanguageModel) -> GraphRunner:
    """``run(graph, feeds)`` backed by the PyTorch network (eval mode, no gradients)."""
    network.eval()
    graphs = {"start": StartGraph(network), "step": StepGraph(network)}

    def run(graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            results = graphs[graph](*(torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()))
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
    batch = {0: "batch"}
    trace_export(
        StartGraph(network),
        directory / "start.onnx",
        {"token": token},
        OUTPUTS,
        {"token": batch, "logits": batch, "next_state": batch},
    )
    with torch.no_grad():
        _, state = StartGraph(network)(token)
    axes = {"token": batch, "state": batch, "logits": batch, "next_state": batch}
    trace_export(StepGraph(network), directory / "step.onnx", {"token": token, "state": state}, OUTPUTS, axes)


def greedy_rollout(run: GraphRunner, first: np.ndarray, steps: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Feed ``first`` tokens, then each step's most likely token: the tokens chosen and every output."""
    outputs = run("start", {"token": first})
    tokens, seen = [first], [outputs["logits"], outputs["next_state"]]
    for _ in range(steps):
        tokens.append(outputs["logits"].argmax(axis=1).astype(np.int64))
        outputs = run("step", {"token": tokens[-1], "state": outputs["next_state"]})
        seen += [outputs["logits"], outputs["next_state"]]
    return np.stack(tokens, axis=1), seen


def export_language_model_checked(
    network: LanguageModel, directory: Path, vocab_size: int, tolerance: float
) -> float:
    """Export both graphs, then roll out 30 greedy steps from 7 random tokens both ways (an unseen batch).

    Returns:
        The largest difference between PyTorch and onnxruntime logits and states along the rollout.

    Raises:
        ParityError: If a chosen token differs, the difference exceeds ``tolerance`` or onnxruntime
            cannot run the graphs; the graphs are removed.
    """
    export_language_model(network, directory)
    first = torch.randint(0, vocab_size, (7,), generator=torch.Generator().manual_seed(1)).numpy()
    try:
        (expected_tokens, expected), (tokens, actual) = (
            greedy_rollout(run, first, 30) for run in (torch_runner(network), onnx_runner(directory))
        )
    except ONNXRUNTIME_ERRORS as failure:
        remove_graphs(directory)
        raise ParityError(
            f"onnxruntime cannot run the language model's graphs at batch 7: {first_line(failure)}"
        ) from failure
    error = max(float(np.abs(a - b).max()) for a, b in zip(expected, actual, strict=True))
    same = bool((expected_tokens == tokens).all())
    if not same or not error <= tolerance:
        remove_graphs(directory)
        raise ParityError(
            f"ONNX parity failed for the language model's graphs: greedy tokens "
            f"{'match' if same else 'differ'}, error {error:.2e} (tolerance {tolerance:.0e})"
        )
    return error


def remove_graphs(directory: Path) -> None:
    """Delete ``start.onnx`` and ``step.onnx`` from ``directory`` (those present)."""
    for name in GRAPHS:
        (directory / f"{name}.onnx").unlink(missing_ok=True)
