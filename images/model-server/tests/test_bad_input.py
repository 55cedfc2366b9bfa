"""Bad requests get 400/413/422 with a message naming the problem, and never hurt the server."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from server_harness import ServerProcess, infer_body

GOOD = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}


def _with(**changes: object) -> dict[str, object]:
    tensor = {**GOOD, **changes}
    return {"inputs": [{k: v for k, v in tensor.items() if v is not None}]}


CASES = [
    # (request JSON, expected status, words the message must contain)
    (_with(shape=[1, 5], data=[1, 2, 3, 4, 5]), 422, ["input 'x'", "shape [1, 5]", "[-1, 4]"]),
    (_with(shape=[4]), 422, ["input 'x'", "shape [4]"]),
    (_with(shape=[2, 4]), 400, ["input 'x'", "needs 8 values", "has 4"]),
    (_with(datatype="FP64"), 422, ["input 'x'", "FP64", "FP32"]),
    (_with(datatype="INT32"), 422, ["INT32", "FP32"]),
    (_with(data=["a", "b", "c", "d"]), 400, ["input 'x'", "numbers"]),
    (_with(data=[[1, 2], [3]]), 400, ["input 'x'", "regular array"]),
    (_with(name="z"), 422, ["unknown input 'z'", "x"]),
    ({"inputs": []}, 422, ["missing input 'x'"]),
    ({"inputs": [GOOD, GOOD]}, 422, ["more than once"]),
    ({"nothing": 1}, 422, ["missing 'inputs'"]),
    ({"inputs": "x"}, 422, ["'inputs'", "wrong JSON type"]),
    ({"inputs": [5]}, 422, ["inputs[0]", "JSON object"]),
    (_with(shape=None), 422, ["input 'x'", "'shape'"]),
    (_with(shape=[1, -4]), 422, ["'shape'", "non-negative"]),
    (_with(datatype=None), 422, ["input 'x'", "missing 'datatype'"]),
    (_with(data=None), 422, ["input 'x'", "missing 'data'"]),
    ({**_with(), "outputs": [{"name": "nope"}]}, 422, ["unknown output 'nope'"]),
    ([1, 2, 3], 422, ["JSON object"]),
]


@pytest.mark.parametrize(("body", "status", "words"), CASES)
def test_bad_request_is_named(
    mlp_server: ServerProcess, body: object, status: int, words: list[str]
) -> None:
    response = mlp_server.client.post("/v2/models/mlp/infer", json=body)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("raw", "words"),
    [(b"{not json", ["malformed JSON"]), (b"", ["malformed JSON"]), (b"\xff\xfe", ["malformed"])],
)
def test_malformed_json_is_400(mlp_server: ServerProcess, raw: bytes, words: list[str]) -> None:
    response = mlp_server.client.post("/v2/models/mlp/infer", content=raw)
    assert response.status_code == 400
    for word in words:
        assert word in response.json()["error"]


def test_integer_input_rejects_fractions(start_server, lookup_model: tuple) -> None:
    path, digest, _ = lookup_model
    server = start_server({"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": digest})
    server.wait_ready()
    body = {"inputs": [{"name": "idx", "shape": [2], "datatype": "INT64", "data": [1.5, 2]}]}
    response = server.client.post("/v2/models/mlp/infer", json=body)
    assert response.status_code == 400
    assert "integers" in response.json()["error"]


def test_oversized_body_is_413(start_server, mlp_model: tuple) -> None:
    path, digest, _ = mlp_model
    server = start_server(
        {
            "SLIPWAY_MODEL_URI": str(path),
            "SLIPWAY_MODEL_SHA256": digest,
            "SLIPWAY_MAX_BODY_BYTES": "2048",
        }
    )
    server.wait_ready()
    big = infer_body("x", np.zeros((200, 4)))
    response = server.client.post("/v2/models/mlp/infer", json=big)
    assert response.status_code == 413
    assert "exceeds the limit of 2048 bytes" in response.json()["error"]

    # Chunked upload without Content-Length: the limit is enforced while reading.
    def chunks():
        for _ in range(10):
            yield b" " * 1000

    response = server.client.post("/v2/models/mlp/infer", content=chunks())
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["error"]
    # The server is still fine.
    small = infer_body("x", np.zeros((1, 4)))
    assert server.client.post("/v2/models/mlp/infer", json=small).status_code == 200


def test_abandoned_and_garbage_connections_do_not_crash(mlp_server: ServerProcess) -> None:
    # A client that declares a body and disconnects halfway, and one that sends non-HTTP bytes.
    with socket.create_connection(("127.0.0.1", mlp_server.port)) as sock:
        sock.sendall(
            b'POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"inp'
        )
    with socket.create_connection(("127.0.0.1", mlp_server.port)) as sock:
        sock.sendall(b"\x00\x01\x02 definitely not http\r\n\r\n")
        sock.recv(1024)
    body = infer_body("x", np.zeros((1, 4)))
    assert mlp_server.client.post("/v2/models/mlp/infer", json=body).status_code == 200
    assert mlp_server.proc.poll() is None
