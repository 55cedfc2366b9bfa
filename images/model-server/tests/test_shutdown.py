"""SIGTERM drains: requests already in flight complete, then the process exits 0.

No sleeps decide the outcome: the test waits (bounded polling) until the in-flight gauge shows
the requests inside the server, sends SIGTERM, waits until the listener refuses new connections
(proof that shutdown began), and only then lets the held requests finish.
"""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import orjson

from server_harness import ServerProcess, batching_env, infer_body


def _inflight(server: ServerProcess) -> float:
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith("slipway_model_inflight_requests{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for(predicate, what: str, attempts: int = 400) -> None:
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def _start_upload(port: int, body: bytes, sent: int) -> socket.socket:
    """Send an infer request's headers and only the first `sent` bytes of its body."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:sent]
    )
    return sock


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            if len(body) >= length:
                return int(head.split(b" ")[1]), body[:length]
    raise AssertionError(f"connection closed before a full response: {data!r}")


def test_sigterm_lets_inflight_requests_finish(start_server, mlp_model: tuple) -> None:
    path, digest, reference = mlp_model
    server = start_server(
        # Requests wait in the (non-eager) batch window until shutdown releases them.
        batching_env(path, digest, 60000, 1000)
    )
    server.wait_ready()
    rng = np.random.default_rng(5)
    queued = [rng.standard_normal((n, 4)).astype(np.float32) for n in (1, 2, 3)]
    half = rng.standard_normal((2, 4)).astype(np.float32)

    # 1) A request whose body is only half sent: the server is reading it.
    body = orjson.dumps(infer_body("x", half))
    sock = _start_upload(server.port, body, 10)

    # 2) Three complete requests held in the batch window.
    def post(x: np.ndarray) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/v2/models/mlp/infer", json=infer_body("x", x))

    with ThreadPoolExecutor(len(queued)) as pool:
        futures = [pool.submit(post, x) for x in queued]
        _wait_for(lambda: _inflight(server) == 4, "4 requests in flight")

        server.proc.send_signal(signal.SIGTERM)
        _wait_for(lambda: _refuses_connections(server.port), "the listener to close")
        sock.sendall(body[10:])
        status, reply = _read_response(sock)
        sock.close()
        responses = [future.result(timeout=60) for future in futures]

    assert status == 200, reply
    got = np.asarray(orjson.loads(reply)["outputs"][0]["data"], np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, reference(half), rtol=1e-5, atol=1e-5)
    for x, response in zip(queued, responses, strict=True):
        assert response.status_code == 200, response.text
        out = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(len(x), 3)
        np.testing.assert_allclose(out, reference(x), rtol=1e-5, atol=1e-5)
    assert server.proc.wait(timeout=60) == 0
    assert "drained; shutting down" in server.log_text()


def test_sigterm_without_batching_finishes_a_held_request(start_server, mlp_model: tuple) -> None:
    """Batching off: a request still being uploaded at SIGTERM is answered, then exit 0."""
    path, digest, _ = mlp_model
    server = start_server({"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": digest})
    server.wait_ready()
    body = orjson.dumps(infer_body("x", np.zeros((1, 4))))
    sock = _start_upload(server.port, body, 5)
    _wait_for(lambda: _inflight(server) == 1, "the held request")
    server.proc.send_signal(signal.SIGTERM)
    _wait_for(lambda: _refuses_connections(server.port), "the listener to close")
    sock.sendall(body[5:])
    status, _ = _read_response(sock)
    sock.close()
    assert status == 200
    assert server.proc.wait(timeout=60) == 0


def test_shutdown_delay_keeps_serving_while_not_ready(start_server, mlp_model: tuple) -> None:
    """With SLIPWAY_SHUTDOWN_DELAY_S, SIGTERM first turns readiness false while requests are
    still served (Kubernetes is removing the pod from its endpoints), then the server drains."""
    path, digest, reference = mlp_model
    server = start_server(
        {
            "SLIPWAY_MODEL_URI": str(path),
            "SLIPWAY_MODEL_SHA256": digest,
            "SLIPWAY_SHUTDOWN_DELAY_S": "8",
        }
    )
    server.wait_ready()
    server.proc.send_signal(signal.SIGTERM)
    ready = server._poll("/v2/health/ready", 503)
    assert ready.json() == {"ready": False, "reason": "shutting down"}
    x = np.ones((1, 4), np.float32)
    response = server.client.post("/v2/models/mlp/infer", json=infer_body("x", x))
    assert response.status_code == 200
    got = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(1, 3)
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    assert server.proc.wait(timeout=60) == 0
