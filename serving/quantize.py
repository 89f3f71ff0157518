"""int8 variants of a bundle's graphs, and the accuracy gate that decides whether they may be used.

onnxruntime dynamic quantisation stores weights as int8 and quantises activations on the fly: the
LSTM op becomes ``DynamicQuantizeLSTM``, MatMul and Gather (embeddings) are quantised for every cell
(onnxruntime has no integer GRU or RNN kernel, so those ops stay fp32). In a folded graph (which
some network families write) the recurrence is a MatMul inside a Loop, quantised for every cell. The
variant lives in ``<bundle>/int8/`` only if its test metric is within a tolerance of the fp32 one.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from serving.bundle import INT8_DIR

QUANTISED_OPS = ["LSTM", "MatMul", "Gather"]
# In graphs whose recurrence is an ONNX Loop (a folded graph) the MatMul to quantise
# is in the loop body; onnxruntime 1.32 aborts on a dynamically quantised Gather beside such a loop.
LOOP_GRAPH_OPS = ["MatMul"]


def quantize_graphs(bundle_dir: Path, graphs: tuple[str, ...]) -> Path:
    """Write int8 copies of a bundle's graphs into ``<bundle>/int8/``; returns that folder."""
    target = bundle_dir / INT8_DIR
    target.mkdir(exist_ok=True)
    quantiser_log = logging.getLogger()  # the quantiser warns about pre-processing on the root logger
    level = quantiser_log.level
    quantiser_log.setLevel(logging.ERROR)
    try:
        for graph in graphs:
            source = bundle_dir / f"{graph}.onnx"
            has_loop = any(
                node.op_type == "Loop" for node in onnx.load(source, load_external_data=False).graph.node
            )
            quantize_dynamic(
                source,
                target / f"{graph}.onnx",
                op_types_to_quantize=LOOP_GRAPH_OPS if has_loop else QUANTISED_OPS,
                weight_type=QuantType.QInt8,
                extra_options={"EnableSubgraph": True},
            )
    finally:
        quantiser_log.setLevel(level)
    return target


@dataclass
class GateDecision:
    """Whether an int8 variant may be used, with the numbers behind the decision.

    Attributes:
        accepted: The int8 metric is within ``tolerance_points`` of the fp32 one (or better).
        metric: The metric compared (the task's promotion metric on the test split).
        fp32: Its value for the fp32 graphs.
        int8: Its value for the int8 graphs.
        tolerance_points: Allowed loss, in points (1 point = 0.01 of a [0, 1] metric).
        loss_points: Measured loss in points (negative when int8 did better).
        reason: One sentence a person can read in the registry or a refusal message.
    """

    accepted: bool
    metric: str
    fp32: float
    int8: float
    tolerance_points: float
    loss_points: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The decision as stored in ``bundle.json`` under ``int8``."""
        return asdict(self)


def int8_gate(
    metric: str,
    fp32: float,
    int8: float,
    tolerance_points: float,
    direction: Literal["max", "min"],
    points_per_unit: float,
) -> GateDecision:
    """Accept the int8 variant only if it loses at most ``tolerance_points`` of ``metric``.

    Args:
        metric: Name of the compared metric.
        fp32: Test metric of the fp32 graphs.
        int8: Test metric of the int8 graphs.
        tolerance_points: Allowed loss in points.
        direction: ``max`` if higher is better, ``min`` if lower is.
        points_per_unit: Points in one unit of the metric (``Task.metric_points``: 100 for a [0, 1] metric).
    """
    loss = (fp32 - int8 if direction == "max" else int8 - fp32) * points_per_unit
    accepted = loss <= tolerance_points + 1e-9
    verdict = "within" if accepted else "beyond"
    reason = (
        f"int8 {metric} {int8:.4f} vs fp32 {fp32:.4f}: loss {loss:+.2f} points, "
        f"{verdict} the {tolerance_points:g}-point tolerance"
    )
    return GateDecision(accepted, metric, fp32, int8, tolerance_points, loss, reason)


def discard_int8(bundle_dir: Path) -> None:
    """Remove a refused variant, so that it can never be served."""
    shutil.rmtree(bundle_dir / INT8_DIR, ignore_errors=True)
