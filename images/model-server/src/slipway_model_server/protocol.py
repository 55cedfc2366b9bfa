"""Open Inference Protocol (V2) JSON tensors: decode a request against the model, encode a reply.

The hot path of the server, so it stays lean: orjson parses the body, numpy converts each
tensor's `data` in one call (no per-element Python loop), and the reply's arrays are handed to
orjson's native numpy serializer. Every way a request can be wrong maps to a `RequestError` with
the HTTP status and a message that names the input and the problem:

- 400: the body is not JSON, or a tensor's data does not match its own declared shape/datatype;
- 422: well-formed JSON that does not fit the model (missing or unknown input, wrong datatype or
  shape for the model, missing fields, unknown requested output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from .model import OnnxModel, TensorSpec

# numpy kinds of JSON-decoded data that may be converted to a tensor of the given kind.
_ACCEPTED_KINDS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}
_KIND_WORDS = {"f": "numbers", "i": "integers", "u": "integers", "b": "booleans"}


class RequestError(Exception):
    """A client error; `status` is the HTTP status code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class InferRequest:
    """A decoded, validated request: numpy feeds ready for onnxruntime."""

    id: Any
    feeds: dict[str, np.ndarray]
    rows: int | None  # shared first-dimension size, None when the inputs disagree
    outputs: list[str] | None  # requested output names, None for all


def _field(obj: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise RequestError(422, f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        raise RequestError(422, f"{where}: '{key}' has the wrong JSON type")
    return value


def _shape(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in value
    ):
        raise RequestError(422, f"{where}: 'shape' must be a list of non-negative integers")
    return value


def _fits(shape: list[int], spec: TensorSpec) -> bool:
    if len(shape) != len(spec.shape):
        return False
    return all(want < 0 or want == got for got, want in zip(shape, spec.shape, strict=True))


def _tensor(raw: Any, index: int, model: OnnxModel) -> tuple[str, np.ndarray]:
    where = f"inputs[{index}]"
    if not isinstance(raw, dict):
        raise RequestError(422, f"{where}: must be a JSON object")
    name = _field(raw, "name", where, str)
    spec = model.input_by_name.get(name)
    if spec is None:
        known = ", ".join(model.input_by_name)
        raise RequestError(422, f"unknown input '{name}'; the model's inputs are: {known}")
    where = f"input '{name}'"
    datatype = _field(raw, "datatype", where, str)
    shape = _shape(raw.get("shape"), where)
    if "data" not in raw:
        raise RequestError(422, f"{where}: missing 'data'")
    if datatype != spec.datatype:
        raise RequestError(
            422, f"{where}: datatype {datatype} does not match the model's {spec.datatype}"
        )
    if not _fits(shape, spec):
        raise RequestError(
            422, f"{where}: shape {shape} does not match the model's {list(spec.shape)}"
        )
    try:
        array = np.asarray(raw["data"])
    except (ValueError, TypeError) as exc:
        raise RequestError(400, f"{where}: data is not a regular array ({exc})") from None
    if array.size and array.dtype.kind not in _ACCEPTED_KINDS.get(spec.dtype.kind, ""):
        words = _KIND_WORDS.get(spec.dtype.kind, spec.datatype)
        raise RequestError(400, f"{where}: data must be {words} for datatype {spec.datatype}")
    expected = math.prod(shape)
    if array.size != expected:
        raise RequestError(
            400, f"{where}: shape {shape} needs {expected} values, data has {array.size}"
        )
    try:
        tensor = array.astype(spec.dtype, copy=False).reshape(shape)
    except (ValueError, OverflowError) as exc:
        raise RequestError(400, f"{where}: data cannot be {spec.datatype} ({exc})") from None
    return name, tensor


def decode_infer_request(body: bytes, model: OnnxModel) -> InferRequest:
    """Parse and validate a V2 infer request body against the model's inputs."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, "the request body must be a JSON object")
    inputs = _field(payload, "inputs", "request", list)
    feeds: dict[str, np.ndarray] = {}
    for index, raw in enumerate(inputs):
        name, tensor = _tensor(raw, index, model)
        if name in feeds:
            raise RequestError(422, f"input '{name}' is given more than once")
        feeds[name] = tensor
    missing = [spec.name for spec in model.inputs if spec.name not in feeds]
    if missing:
        raise RequestError(422, "missing input " + ", ".join(f"'{name}'" for name in missing))
    outputs = None
    if payload.get("outputs") is not None:
        outputs = []
        for index, raw in enumerate(_field(payload, "outputs", "request", list)):
            where = f"outputs[{index}]"
            out = _field(raw, "name", where, str) if isinstance(raw, dict) else None
            if out not in model.output_names:
                known = ", ".join(model.output_names)
                raise RequestError(422, f"{where}: unknown output {out!r}; outputs are: {known}")
            outputs.append(out)
    firsts = {tensor.shape[0] if tensor.ndim else None for tensor in feeds.values()}
    rows = firsts.pop() if len(firsts) == 1 else None
    return InferRequest(payload.get("id"), feeds, rows, outputs)


def encode_infer_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    model: OnnxModel,
    arrays: list[np.ndarray],
) -> bytes:
    """Serialize the outputs (all, or the requested ones) as a V2 infer response."""
    wanted = request.outputs
    outputs = []
    for spec, array in zip(model.outputs, arrays, strict=True):
        if wanted is not None and spec.name not in wanted:
            continue
        outputs.append(
            {
                "name": spec.name,
                "datatype": spec.datatype,
                "shape": list(array.shape),
                "data": np.ascontiguousarray(array).reshape(-1),
            }
        )
    reply: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        reply["id"] = request.id
    reply["outputs"] = outputs
    return orjson.dumps(reply, option=orjson.OPT_SERIALIZE_NUMPY)
