"""ONNX export of trained networks and the PyTorch-vs-onnxruntime parity check that gates it.

``export_graphs`` is the one entry point: it hands the network to its family (``models.family``),
which writes the graphs its task's codec runs. What families share lives here: the traced export,
example inputs of token ids or real-valued steps, and ``export_checked``, the export and parity
check of a single ``(inputs, lengths) -> output`` graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from torch import nn

from models.family import get_family
from tasks.common.errors import first_line

ExampleMaker = Callable[[int, int, int], dict[str, torch.Tensor]]  # (batch, length, seed) -> named inputs
GraphBuilder = Callable[[nn.Module], onnx.ModelProto]  # builds a graph from the weights instead of a trace
# onnxruntime's own exception types (none is a RuntimeError), raised for a graph it cannot load or run,
# e.g. one whose batch or time axis the export froze at its example's size.
ONNXRUNTIME_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidGraph,
    ort_state.InvalidProtobuf,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
)


class ParityError(RuntimeError):
    """The exported graph disagrees with the PyTorch network beyond the tolerance, or cannot run."""


def _lengths(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0], lengths[-1] = length, 1
    return lengths


def token_batch(vocab_size: int, batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids with varied lengths (the first row full length, the last length 1)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = _lengths(batch, length, generator)
    input_ids = torch.randint(2, vocab_size, (batch, length), generator=generator)
    input_ids[torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return {"input_ids": input_ids, "lengths": lengths}


def series_batch(input_size: int, batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Random real-valued sequences ``(batch, length, input_size)`` with varied lengths."""
    generator = torch.Generator().manual_seed(seed)
    lengths = _lengths(batch, length, generator)
    return {"inputs": torch.randn(batch, length, input_size, generator=generator), "lengths": lengths}


def export_onnx(network: nn.Module, path: Path, example: dict[str, torch.Tensor], output: str) -> Path:
    """Export a ``(inputs, lengths) -> output`` network to ONNX with dynamic batch and time axes.

    Uses the TorchScript-based exporter (``dynamo=False``): the dynamo exporter mislays GRU gates
    and freezes the sequence length of recurrent layers.

    Args:
        network: Network taking the example's tensors positionally.
        path: Where to write the ``.onnx`` file.
        example: Named example inputs, batch and length above 1.
        output: Name of the output.

    Returns:
        ``path``.
    """
    names = list(example)
    axes = {names[0]: {0: "batch", 1: "time"}, **{n: {0: "batch"} for n in names[1:]}, output: {0: "batch"}}
    trace_export(network, path, example, [output], axes)
    return path


def trace_export(
    module: nn.Module, path: Path, example: dict[str, torch.Tensor], outputs: list[str], axes: dict
) -> None:
    """``torch.onnx.export`` with the TorchScript tracer, opset 17, named inputs/outputs and dynamic axes."""
    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The tracer warns about nn.RNN's own input-size checks; the parity check is the real test.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")  # h0 is zeros from the batch
        torch.onnx.export(
            module,
            tuple(example.values()),
            str(path),
            dynamo=False,
            input_names=list(example),
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
        )


def parity_error(network: nn.Module, path: Path, inputs: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between PyTorch and onnxruntime outputs on ``inputs``."""
    network.eval()
    with torch.no_grad():
        expected = network(*inputs.values()).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})
    return float(np.abs(expected - actual).max())


def export_checked(
    network: nn.Module,
    path: Path,
    make: ExampleMaker,
    output: str,
    tolerance: float = 1e-4,
    build: GraphBuilder | None = None,
) -> float:
    """Export at batch 4 x length 12, then check parity at batch 7 x length 23 (shapes unseen at export).

    Args:
        network: The trained network, ``(inputs, lengths) -> output``.
        path: Where to write the ``.onnx`` file (its folder is created).
        make: Example inputs ``(batch, length, seed) -> named tensors`` (``token_batch``, ``series_batch``).
        output: Name of the graph's output.
        tolerance: Largest allowed absolute difference.
        build: Builds the graph from the network's weights instead of tracing it (a family's own graph,
            written with ``onnx.helper``), checked just the same.

    Returns:
        The parity error, at most ``tolerance``.

    Raises:
        ParityError: If the error exceeds ``tolerance`` or onnxruntime cannot run the graph at those
            shapes; the exported file is removed.
    """
    if build is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(build(network), path)
    else:
        export_onnx(network, path, make(4, 12, 0), output)
    try:
        error = parity_error(network, path, make(7, 23, 1))
    except ONNXRUNTIME_ERRORS as failure:
        path.unlink()
        raise ParityError(
            f"onnxruntime cannot run {path.name} at batch 7, length 23: {first_line(failure)}"
        ) from failure
    if not error <= tolerance:
        path.unlink()
        raise ParityError(f"ONNX parity error {error:.2e} exceeds tolerance {tolerance:.0e} for {path.name}")
    return error


def export_graphs(
    family: str, network: nn.Module, directory: Path, shape: dict[str, int], tolerance: float = 1e-4
) -> float:
    """Export a trained network as the ONNX graphs its task serves, each checked for parity.

    Args:
        family: The network family that built it (the task's ``family``).
        network: The trained network.
        directory: Folder for the graphs the task's codec names (``model.onnx``, or one per graph).
        shape: The codec's ``network_shape()``.
        tolerance: Largest allowed difference between PyTorch and onnxruntime.

    Returns:
        The parity error.

    Raises:
        ParityError: If the graphs disagree with PyTorch; nothing is left in ``directory``.
        tasks.common.plugins.PluginError: If no package registers ``family``.
    """
    return get_family(family).export(network, directory, shape, tolerance)
