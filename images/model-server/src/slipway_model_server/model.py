"""The onnxruntime session behind the server, and the tensor metadata read from its graph.

`OnnxModel` owns one `InferenceSession`. It knows the V2 name, datatype and shape of every input
and output (dynamic dimensions are -1, as the protocol asks), whether the model can be batched
along its first axis, and how to warm itself up with a zero-filled request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

# onnxruntime's type strings -> (V2 datatype, numpy dtype)
ONNX_TO_V2: dict[str, tuple[str, np.dtype]] = {
    "tensor(bool)": ("BOOL", np.dtype(np.bool_)),
    "tensor(uint8)": ("UINT8", np.dtype(np.uint8)),
    "tensor(uint16)": ("UINT16", np.dtype(np.uint16)),
    "tensor(uint32)": ("UINT32", np.dtype(np.uint32)),
    "tensor(uint64)": ("UINT64", np.dtype(np.uint64)),
    "tensor(int8)": ("INT8", np.dtype(np.int8)),
    "tensor(int16)": ("INT16", np.dtype(np.int16)),
    "tensor(int32)": ("INT32", np.dtype(np.int32)),
    "tensor(int64)": ("INT64", np.dtype(np.int64)),
    "tensor(float16)": ("FP16", np.dtype(np.float16)),
    "tensor(float)": ("FP32", np.dtype(np.float32)),
    "tensor(double)": ("FP64", np.dtype(np.float64)),
}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output as the V2 metadata endpoint describes it."""

    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 for a dynamic dimension
    dtype: np.dtype

    def metadata(self) -> dict[str, object]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _spec(arg: ort.NodeArg) -> TensorSpec:
    if arg.type not in ONNX_TO_V2:
        raise ValueError(f"tensor {arg.name!r} has type {arg.type}, which this server cannot serve")
    datatype, dtype = ONNX_TO_V2[arg.type]
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in (arg.shape or []))
    return TensorSpec(arg.name, datatype, shape, dtype)


class OnnxModel:
    """An ONNX model ready to run: session, tensor specs and batching capability."""

    def __init__(
        self,
        data: bytes,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 0,
        providers: list[str] | None = None,
        spinning: bool = False,
    ) -> None:
        options = ort.SessionOptions()
        if not spinning:  # idle intra-op threads sleep instead of spinning (shared CPUs)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            data, sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
        self.inputs = [_spec(arg) for arg in self.session.get_inputs()]
        self.outputs = [_spec(arg) for arg in self.session.get_outputs()]
        self.input_by_name = {spec.name: spec for spec in self.inputs}
        self.output_names = [spec.name for spec in self.outputs]
        self.batchable = all(
            len(spec.shape) >= 1 and spec.shape[0] == -1 for spec in self.inputs + self.outputs
        )

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run every output; arrays come back in `self.outputs` order."""
        return self.session.run(self.output_names, feeds)  # type: ignore[no-any-return]

    def warm_up(self, runs: int = 5) -> float:
        """Run zero-filled inputs (dynamic dimensions set to 1); return the median seconds."""
        feeds = {
            spec.name: np.zeros([1 if dim < 0 else dim for dim in spec.shape], dtype=spec.dtype)
            for spec in self.inputs
        }
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            self.run(feeds)
            timings.append(time.perf_counter() - start)
        return sorted(timings)[len(timings) // 2]
