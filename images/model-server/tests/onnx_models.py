"""Small real ONNX graphs for the tests and the benchmark, built with the `onnx` helper API.

Each builder returns the serialized model and a numpy function that computes what the model
should output, so tests compare the server's answers with an independent reference. Weights come
from a seeded generator: the same call always builds the same bytes (and the same sha256).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _finish(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def mlp(
    layers: Sequence[int] = (4, 16, 3), seed: int = 0
) -> tuple[bytes, Callable[[np.ndarray], np.ndarray]]:
    """A ReLU MLP `x [batch, layers[0]] -> y [batch, layers[-1]]` (FP32, dynamic batch)."""
    rng = np.random.default_rng(seed)
    weights = [
        (
            (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32),
            (rng.standard_normal(fan_out) * 0.1).astype(np.float32),
        )
        for fan_in, fan_out in itertools.pairwise(layers)
    ]
    nodes, inits, current = [], [], "x"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(weights) - 1
        nodes.append(helper.make_node("MatMul", [current, f"w{i}"], [f"mm{i}"]))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], ["y" if last else f"pre{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"pre{i}"], [f"h{i}"]))
            current = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", layers[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", layers[-1]])],
        inits,
    )

    def reference(x: np.ndarray) -> np.ndarray:
        h = x.astype(np.float32)
        for i, (w, b) in enumerate(weights):
            h = h @ w + b
            if i < len(weights) - 1:
                h = np.maximum(h, 0)
        return h

    return _finish(graph), reference


def lookup(rows: int = 10, width: int = 2) -> tuple[bytes, np.ndarray]:
    """`idx INT64 [batch] -> value FP32 [batch, width]` (a Gather over a fixed table) plus a
    second output `twice = 2 * value`. An index outside [-rows, rows) makes onnxruntime fail at
    run time: a request that is valid JSON and valid shape, yet fails inside the model."""
    table = np.arange(rows * width, dtype=np.float32).reshape(rows, width)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "idx"], ["value"], axis=0),
            helper.make_node("Add", ["value", "value"], ["twice"]),
        ],
        "lookup",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["batch"])],
        [
            helper.make_tensor_value_info("value", TensorProto.FLOAT, ["batch", width]),
            helper.make_tensor_value_info("twice", TensorProto.FLOAT, ["batch", width]),
        ],
        [numpy_helper.from_array(table, "table")],
    )
    return _finish(graph), table
