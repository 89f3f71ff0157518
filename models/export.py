"""ONNX export of trained networks and the PyTorch-vs-onnxruntime parity check that gates it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

TOKEN_INPUTS = ("input_ids", "lengths")
DYNAMIC_AXES = {"input_ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}}


class ParityError(RuntimeError):
    """The exported graph disagrees with the PyTorch network beyond the tolerance."""


def token_batch(vocab_size: int, batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids with varied lengths (the first row full length, the last length 1)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0], lengths[-1] = length, 1
    input_ids = torch.randint(2, vocab_size, (batch, length), generator=generator)
    input_ids[torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return {"input_ids": input_ids, "lengths": lengths}


def export_onnx(network: nn.Module, path: Path, example: dict[str, torch.Tensor]) -> Path:
    """Export a token-input network to ONNX with dynamic batch and time axes.

    Uses the TorchScript-based exporter (``dynamo=False``): the dynamo exporter mislays GRU gates
    and freezes the sequence length of recurrent layers.

    Args:
        network: Network mapping ``(input_ids, lengths)`` to ``logits``.
        path: Where to write the ``.onnx`` file.
        example: Example inputs, batch and length above 1.

    Returns:
        ``path``.
    """
    network.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The tracer warns about nn.RNN's own input-size checks; the parity check is the real test.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            network,
            tuple(example[name] for name in TOKEN_INPUTS),
            str(path),
            dynamo=False,
            input_names=list(TOKEN_INPUTS),
            output_names=["logits"],
            dynamic_axes=DYNAMIC_AXES,
            opset_version=17,
        )
    return path


def parity_error(network: nn.Module, path: Path, inputs: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between PyTorch and onnxruntime outputs on ``inputs``."""
    network.eval()
    with torch.no_grad():
        expected = network(*(inputs[name] for name in TOKEN_INPUTS)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["logits"], {name: inputs[name].numpy() for name in TOKEN_INPUTS})
    return float(np.abs(expected - actual).max())


def export_checked(network: nn.Module, path: Path, vocab_size: int, tolerance: float = 1e-4) -> float:
    """Export at batch 4 x length 12, then check parity at batch 7 x length 23 (shapes unseen at export).

    Returns:
        The parity error, at most ``tolerance``.

    Raises:
        ParityError: If the error exceeds ``tolerance``; the exported file is removed.
    """
    export_onnx(network, path, token_batch(vocab_size, batch=4, length=12, seed=0))
    error = parity_error(network, path, token_batch(vocab_size, batch=7, length=23, seed=1))
    if not error <= tolerance:
        path.unlink()
        raise ParityError(f"ONNX parity error {error:.2e} exceeds tolerance {tolerance:.0e} for {path.name}")
    return error
