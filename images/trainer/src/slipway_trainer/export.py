"""ONNX export with a dynamic batch axis and the onnxruntime/torch parity check.

The parity check runs the exported model in onnxruntime and the torch model on the same rows
(the validation split) and requires ``|ort - torch| <= atol + rtol * |torch|`` element-wise on the
logits (defaults: atol 1e-4, rtol 1e-3) and identical predicted classes. A model that fails is
never published: the trainer exits non-zero.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from .evaluation import logits_of

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"


class ParityError(RuntimeError):
    """onnxruntime and torch disagree beyond the tolerance."""


def export_onnx(model: nn.Module, input_shape: list[int], opset: int = 17) -> bytes:
    """Serialise ``model`` (on the CPU, eval mode) to ONNX bytes with a dynamic batch axis."""
    model = model.to("cpu").eval()
    example = torch.zeros(2, *input_shape, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(
            model,
            (example,),
            path,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}},
            opset_version=opset,
            dynamo=False,
            external_data=False,
        )
        with open(path, "rb") as handle:
            data = handle.read()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def _dims(value_info: Any) -> list[int | str]:
    return [
        d.dim_param if d.dim_param else int(d.dim_value)
        for d in value_info.type.tensor_type.shape.dim
    ]


def describe(onnx_bytes: bytes) -> dict[str, Any]:
    """Input/output names, shapes (``batch`` for the dynamic axis) and dtypes of an ONNX model."""
    graph = onnx.load_from_string(onnx_bytes).graph
    initializers = {i.name for i in graph.initializer}

    def entry(v: Any) -> dict[str, Any]:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
        return {"name": v.name, "shape": _dims(v), "dtype": str(np.dtype(dtype))}

    model = onnx.load_from_string(onnx_bytes)
    return {
        "inputs": [entry(v) for v in graph.input if v.name not in initializers],
        "outputs": [entry(v) for v in graph.output],
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
    }


def parity_check(
    model: nn.Module, onnx_bytes: bytes, x: torch.Tensor, atol: float = 1e-4, rtol: float = 1e-3
) -> dict[str, Any]:
    """Compare onnxruntime and torch on ``x``; raise ``ParityError`` past the tolerance."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    expected = logits_of(model.to("cpu"), x, torch.device("cpu")).numpy()
    got = np.concatenate(
        [
            session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + 512].numpy()})[0]
            for i in range(0, len(x), 512)
        ]
    )
    if got.shape != expected.shape:
        raise ParityError(f"onnx output shape {got.shape} != torch {expected.shape}")
    diff = np.abs(got - expected)
    bound = atol + rtol * np.abs(expected)
    worst = float(diff.max()) if diff.size else 0.0
    agreement = float((got.argmax(axis=1) == expected.argmax(axis=1)).mean()) if len(got) else 1.0
    report = {
        "samples": len(x),
        "maxAbsDiff": worst,
        "atol": atol,
        "rtol": rtol,
        "argmaxAgreement": agreement,
        "passed": bool((diff <= bound).all() and agreement == 1.0),
    }
    if not report["passed"]:
        over = int((diff > bound).sum())
        raise ParityError(
            f"ONNX parity check failed on {len(x)} validation rows: "
            f"max |onnxruntime - torch| = {worst:.3g} "
            f"({over} values beyond atol={atol} + rtol={rtol}*|torch|), "
            f"argmax agreement {agreement:.4f}; "
            "the export does not reproduce the trained model"
        )
    return report
