"""An MLServer runtime that serves an ONNX file with onnxruntime: the comparison in the benchmark.

MLServer has no maintained ONNX runtime of its own, so the benchmark gives it the most direct
one possible: decode each V2 input with MLServer's NumpyCodec, call `InferenceSession.run`, and
encode the outputs back. Session options match the Slipway server's defaults (full graph
optimization, idle intra-op threads sleep instead of spinning).
"""

from __future__ import annotations

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxRuntimeModel(MLModel):
    """Load the model's `parameters.uri` into an InferenceSession and run it per request."""

    async def load(self) -> bool:
        uri = await get_model_uri(self._settings)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            uri, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._outputs = [out.name for out in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {inp.name: NumpyCodec.decode_input(inp) for inp in payload.inputs}
        arrays = self._session.run(self._outputs, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name, array)
                for name, array in zip(self._outputs, arrays, strict=True)
            ],
        )
