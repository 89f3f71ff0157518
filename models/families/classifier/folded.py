"""A faster serving graph for one-layer token classifiers: the input projection folded into the embedding.

A token's embedding ``e`` always meets the first recurrent layer as ``W_ih e + b``, the same vector
every time the token appears. So the graph looks that vector up in a precomputed table
``T = E W_ihᵀ + b`` (vocabulary × gates·hidden) instead of multiplying at every step: for an LSTM with
300-dimensional embeddings and 150 hidden units, two thirds of the arithmetic disappear. What is left,
``h_t = cell(T[x_t] + W_hh h_{t-1})``, runs in an ONNX ``Loop``; pooling and the linear head follow.

The graph is built from the trained weights with ``onnx.helper`` and goes through the same parity
check against PyTorch as every other export. Other networks (bidirectional, stacked, real-valued
input) use the standard export.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from models.families.classifier.network import SequenceClassifier

OPSET = 18
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def can_fold(network: nn.Module) -> bool:
    """Whether ``network`` is a token classifier with a single unidirectional layer (with biases)."""
    if type(network) is not SequenceClassifier:
        return False
    encoder = network.encoder
    layer = encoder.forward_layers[0]
    return (
        isinstance(encoder.embed, nn.Embedding)
        and len(encoder.forward_layers) == 1
        and not encoder.backward_layers
        and layer.bias
        and getattr(layer, "proj_size", 0) == 0
        and getattr(layer, "nonlinearity", "tanh") == "tanh"
    )


def _array(tensor: nn.Parameter) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _cell_nodes(cell: str) -> list[onnx.NodeProto]:
    """Loop-body nodes: the next state ``h_next`` (and ``c_next``) from the projected ``x`` and ``h``."""
    node = helper.make_node
    if cell == "rnn":
        return [
            node("MatMul", ["h", "R"], ["hr"]),
            node("Add", ["x", "hr"], ["a"]),
            node("Tanh", ["a"], ["h_next"]),
        ]
    if cell == "lstm":  # PyTorch gate order: input, forget, cell, output
        return [
            node("MatMul", ["h", "R"], ["hr"]),
            node("Add", ["x", "hr"], ["a"]),
            node("Split", ["a"], ["ai", "af", "ag", "ao"], axis=1, num_outputs=4),
            node("Sigmoid", ["ai"], ["i"]),
            node("Sigmoid", ["af"], ["f"]),
            node("Tanh", ["ag"], ["g"]),
            node("Sigmoid", ["ao"], ["o"]),
            node("Mul", ["f", "c"], ["fc"]),
            node("Mul", ["i", "g"], ["ig"]),
            node("Add", ["fc", "ig"], ["c_next"]),
            node("Tanh", ["c_next"], ["tc"]),
            node("Mul", ["o", "tc"], ["h_next"]),
        ]
    # GRU, PyTorch gate order reset, update, new; the hidden bias stays inside the reset product.
    return [
        node("MatMul", ["h", "R"], ["hr0"]),
        node("Add", ["hr0", "b_hh"], ["hr"]),
        node("Split", ["x"], ["xr", "xz", "xn"], axis=1, num_outputs=3),
        node("Split", ["hr"], ["hr_r", "hr_z", "hr_n"], axis=1, num_outputs=3),
        node("Add", ["xr", "hr_r"], ["ar"]),
        node("Sigmoid", ["ar"], ["r"]),
        node("Add", ["xz", "hr_z"], ["az"]),
        node("Sigmoid", ["az"], ["z"]),
        node("Mul", ["r", "hr_n"], ["rn"]),
        node("Add", ["xn", "rn"], ["an"]),
        node("Tanh", ["an"], ["n"]),
        node("Sub", ["h", "n"], ["hn"]),
        node("Mul", ["z", "hn"], ["zhn"]),
        node("Add", ["n", "zhn"], ["h_next"]),  # (1 - z) n + z h
    ]


def _loop_body(cell: str, b_hh: np.ndarray | None) -> onnx.GraphProto:
    """One time step: carried ``h`` (and ``c``), and ``h_next`` as the scan output."""
    node, value = helper.make_node, helper.make_tensor_value_info
    states = ["h", "c"] if cell == "lstm" else ["h"]
    nodes = [
        node("Gather", ["Xt", "step"], ["x"], axis=0),
        *_cell_nodes(cell),
        node("Identity", ["cond"], ["cond_out"]),
        *[node("Identity", [f"{state}_next"], [f"{state}_out"]) for state in states],
        node("Identity", ["h_next"], ["h_seq"]),
    ]
    outputs = ["cond_out", *[f"{state}_out" for state in states], "h_seq"]
    return helper.make_graph(
        nodes,
        "step",
        [value("step", TensorProto.INT64, []), value("cond", TensorProto.BOOL, [])]
        + [value(state, TensorProto.FLOAT, None) for state in states],
        [
            value(name, TensorProto.BOOL if name == "cond_out" else TensorProto.FLOAT, None)
            for name in outputs
        ],
        [numpy_helper.from_array(b_hh, "b_hh")] if b_hh is not None else [],
    )


def _pooling_nodes(pooling: str) -> list[onnx.NodeProto]:
    """From the per-step outputs ``Y`` (time, batch, hidden) and ``valid`` (time, batch, 1) to ``pooled``."""
    node = helper.make_node
    if pooling == "mean":
        return [
            node("Cast", ["valid"], ["valid_f"], to=TensorProto.FLOAT),
            node("Mul", ["Y", "valid_f"], ["Y_valid"]),
            node("ReduceSum", ["Y_valid", "axis0"], ["total"], keepdims=0),
            node("Cast", ["lengths"], ["lengths_f"], to=TensorProto.FLOAT),
            node("Unsqueeze", ["lengths_f", "axis1"], ["lengths_col"]),
            node("Div", ["total", "lengths_col"], ["pooled"]),
        ]
    if pooling == "max":
        return [
            node("Where", ["valid", "Y", "lowest"], ["Y_valid"]),
            node("ReduceMax", ["Y_valid", "axis0"], ["pooled"], keepdims=0),
        ]
    return [  # last valid step: a one-hot over time picks it
        node("Sub", ["lengths", "one"], ["last_step"]),
        node("Unsqueeze", ["last_step", "axis0"], ["last_row"]),
        node("Equal", ["steps_col", "last_row"], ["is_last"]),
        node("Unsqueeze", ["is_last", "axis2"], ["is_last3"]),
        node("Cast", ["is_last3"], ["is_last_f"], to=TensorProto.FLOAT),
        node("Mul", ["Y", "is_last_f"], ["Y_last"]),
        node("ReduceSum", ["Y_last", "axis0"], ["pooled"], keepdims=0),
    ]


def folded_classifier_graph(network: SequenceClassifier) -> onnx.ModelProto:
    """Build the folded serving graph ``(input_ids, lengths) -> logits`` from a trained classifier."""
    layer = network.encoder.forward_layers[0]
    cell = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(layer)]
    table = _array(network.encoder.embed.weight) @ _array(layer.weight_ih_l0).T + _array(layer.bias_ih_l0)
    b_hh = _array(layer.bias_hh_l0)
    if cell != "gru":  # the GRU's hidden bias is scaled by the reset gate, so it cannot be folded
        table, b_hh = table + b_hh, None
    hidden = layer.hidden_size
    node, value = helper.make_node, helper.make_tensor_value_info
    states = ["h0", "h0"] if cell == "lstm" else ["h0"]
    finals = ["h_last", "c_last"] if cell == "lstm" else ["h_last"]
    nodes = [
        node("Transpose", ["input_ids"], ["ids_by_step"], perm=[1, 0]),  # cheaper than moving gathered rows
        node("Gather", ["T", "ids_by_step"], ["Xt"], axis=0),
        node("Shape", ["input_ids"], ["shape"]),
        node("Gather", ["shape", "one"], ["time"], axis=0),
        node("Gather", ["shape", "axis0"], ["batch"], axis=0),
        node("Concat", ["batch", "hidden"], ["state_shape"], axis=0),
        node(
            "ConstantOfShape", ["state_shape"], ["h0"], value=numpy_helper.from_array(np.zeros(1, np.float32))
        ),
        node("Loop", ["time", "true", *states], [*finals, "Y"], body=_loop_body(cell, b_hh)),
        node("Range", ["zero", "time", "one"], ["steps"]),
        node("Unsqueeze", ["steps", "axis1"], ["steps_col"]),
        node("Unsqueeze", ["lengths", "axis0"], ["lengths_row"]),
        node("Less", ["steps_col", "lengths_row"], ["valid2"]),
        node("Unsqueeze", ["valid2", "axis2"], ["valid"]),
        *_pooling_nodes(network.encoder.pooling),
        node("Gemm", ["pooled", "head_weight", "head_bias"], ["logits"], transB=1),
    ]
    constants = {
        "T": table.astype(np.float32),
        "R": _array(layer.weight_hh_l0).T.copy(),
        "head_weight": _array(network.head.weight),
        "head_bias": _array(network.head.bias),
        "hidden": np.array([hidden], np.int64),
        "zero": np.array(0, np.int64),
        "one": np.array(1, np.int64),
        "axis0": np.array([0], np.int64),
        "axis1": np.array([1], np.int64),
        "axis2": np.array([2], np.int64),
        "true": np.array(True),
    }
    if network.encoder.pooling == "max":
        constants["lowest"] = np.array(np.finfo(np.float32).min, np.float32)
    graph = helper.make_graph(
        nodes,
        f"folded_{cell}_classifier",
        [
            value("input_ids", TensorProto.INT64, ["batch", "time"]),
            value("lengths", TensorProto.INT64, ["batch"]),
        ],
        [value("logits", TensorProto.FLOAT, ["batch", network.head.out_features])],
        [numpy_helper.from_array(array, name) for name, array in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="seqops")
    onnx.checker.check_model(model)
    return model
