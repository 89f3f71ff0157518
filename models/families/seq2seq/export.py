"""ONNX export of a ``Seq2Seq`` as two graphs, checked token for token on a greedy decode.

Both the PyTorch modules and the exported graphs are wrapped as ``run(graph, feeds)`` functions, so
the parity check drives them with the same beam search that serving uses (``tasks.common.decoding``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.export import ONNXRUNTIME_ERRORS, ParityError, token_batch, trace_export
from models.families.seq2seq.network import DecoderStepGraph, EncoderGraph, Seq2Seq
from models.recurrent import time_mask
from tasks.common.base import GraphRunner, declared_feeds
from tasks.common.decoding import beam_search
from tasks.common.errors import first_line
from tasks.common.subwords import BOS_ID, EOS_ID

ENCODER_OUTPUTS = ["memory", "keys", "state"]
STEP_OUTPUTS = ["top_log_probs", "top_tokens", "eos_log_prob", "next_state", "attention"]


def torch_runner(network: Seq2Seq) -> GraphRunner:
    """``run(graph, feeds)`` backed by the PyTorch network (eval mode, no gradients)."""
    network.eval()
    graphs = {
        "encoder": (EncoderGraph(network), ENCODER_OUTPUTS),
        "decoder_step": (DecoderStepGraph(network, EOS_ID), STEP_OUTPUTS),
    }

    def run(graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        module, outputs = graphs[graph]
        with torch.no_grad():
            results = module(
                **{name: torch.from_numpy(np.require(v, requirements="C")) for name, v in feeds.items()}
            )
        return {name: tensor.numpy() for name, tensor in zip(outputs, results, strict=True)}

    return run


def onnx_runner(directory: Path, options: ort.SessionOptions | None = None) -> GraphRunner:
    """``run(graph, feeds)`` backed by onnxruntime sessions of ``<graph>.onnx`` in ``directory``."""
    sessions = {
        name: ort.InferenceSession(
            str(directory / f"{name}.onnx"), options, providers=["CPUExecutionProvider"]
        )
        for name in ("encoder", "decoder_step")
    }
    inputs = {name: [i.name for i in session.get_inputs()] for name, session in sessions.items()}

    def run(graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = sessions[graph]
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, declared_feeds(feeds, inputs[graph])), strict=True))

    return run


def export_seq2seq(network: Seq2Seq, directory: Path, source_vocab_size: int) -> None:
    """Write ``encoder.onnx`` and ``decoder_step.onnx`` with dynamic batch and source length."""
    network.eval()
    directory.mkdir(parents=True, exist_ok=True)
    example = token_batch(source_vocab_size, 4, 12, 0)
    batch, source = {0: "batch"}, {0: "batch", 1: "source"}
    trace_export(
        EncoderGraph(network),
        directory / "encoder.onnx",
        example,
        ENCODER_OUTPUTS,
        {"input_ids": source, "lengths": batch, "memory": source, "keys": source, "state": batch},
    )
    with torch.no_grad():
        memory, keys, state = network.encode(**example)
    step = {  # two hypotheses per input
        "token": torch.full((8,), 5, dtype=torch.long),
        "state": state.repeat_interleave(2, 0),
        "memory": memory,
        "keys": keys,
        "source_mask": time_mask(example["lengths"], 12),
        "candidates": torch.tensor(3),
    }
    hypotheses, inputs = {0: "hypotheses"}, {0: "inputs", 1: "source"}
    axes = {"token": hypotheses, "state": hypotheses, "memory": inputs, "keys": inputs, "source_mask": inputs}
    top = {0: "hypotheses", 1: "candidates"}
    axes |= {"top_log_probs": top, "top_tokens": top, "eos_log_prob": hypotheses, "next_state": hypotheses}
    axes["attention"] = {0: "hypotheses", 1: "source"}
    step_graph = DecoderStepGraph(network, EOS_ID, for_export=True)
    trace_export(step_graph, directory / "decoder_step.onnx", step, STEP_OUTPUTS, axes)


def export_seq2seq_checked(
    network: Seq2Seq, directory: Path, shape: dict[str, int], tolerance: float
) -> float:
    """Export both graphs, then decode unseen inputs (batch 7, up to 23 tokens) both ways, greedy and beam 3.

    Returns:
        The largest difference between PyTorch and onnxruntime encoder outputs and sentence scores.

    Raises:
        ParityError: If any decoded token differs, the difference exceeds ``tolerance`` or onnxruntime
            cannot run the graphs at those shapes; the graphs are removed.
    """
    export_seq2seq(network, directory, shape["vocab_size"])
    feeds = {k: v.numpy() for k, v in token_batch(shape["vocab_size"], 7, 23, 1).items()}
    try:
        runners = torch_runner(network), onnx_runner(directory)
        decoded = [
            beam_search(
                run, feeds, BOS_ID, EOS_ID, beam_width=width, length_penalty=1.0, max_steps=np.full(7, 30)
            )
            for width in (1, 3)  # greedy, and a beam (reordered states)
            for run in runners
        ]
        encoded = [run("encoder", feeds) for run in runners]
    except ONNXRUNTIME_ERRORS as failure:
        remove_graphs(directory)
        raise ParityError(
            f"onnxruntime cannot run the seq2seq graphs at batch 7, up to 23 tokens: {first_line(failure)}"
        ) from failure
    error = max(float(np.abs(encoded[0][k] - encoded[1][k]).max()) for k in ENCODER_OUTPUTS)
    error = max(error, *(float(np.abs(a.scores - b.scores).max()) for a, b in (decoded[:2], decoded[2:])))
    tokens_match = decoded[0].tokens == decoded[1].tokens and decoded[2].tokens == decoded[3].tokens
    if not tokens_match or not error <= tolerance:
        remove_graphs(directory)
        raise ParityError(
            f"ONNX parity failed for the seq2seq graphs: decoded tokens "
            f"{'match' if tokens_match else 'differ'}, error {error:.2e} "
            f"(tolerance {tolerance:.0e})"
        )
    return error


def remove_graphs(directory: Path) -> None:
    """Delete ``encoder.onnx`` and ``decoder_step.onnx`` from ``directory`` (those present)."""
    for name in ("encoder", "decoder_step"):
        (directory / f"{name}.onnx").unlink(missing_ok=True)
