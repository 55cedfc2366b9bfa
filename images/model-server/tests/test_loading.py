"""Model loading: URIs, the sha256 check, failures that leave the server up but not ready, and
settings errors that stop the process with a clear message."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import onnx_models
from server_harness import SRC, infer_body, sha256


def _assert_not_ready(server, words: list[str]) -> None:
    response = server.wait_load_attempted()
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    for word in words:
        assert word in body["reason"], body
        assert word in server.log_text()
    assert server.client.get("/v2/health/live").status_code == 200
    model_ready = server.client.get("/v2/models/mlp/ready")
    assert model_ready.status_code == 503
    infer = server.client.post("/v2/models/mlp/infer", json=infer_body("x", np.zeros((1, 4))))
    assert infer.status_code == 503
    assert "model not ready" in infer.json()["error"]
    assert server.proc.poll() is None


def test_wrong_sha256_leaves_server_up_and_not_ready(start_server, mlp_model: tuple) -> None:
    path, digest, _ = mlp_model
    wrong = "0" * 64
    server = start_server({"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": wrong})
    _assert_not_ready(server, ["sha256 mismatch", f"expected {wrong}", f"got {digest}"])


def test_missing_file(start_server, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.onnx"
    server = start_server({"SLIPWAY_MODEL_URI": str(missing), "SLIPWAY_MODEL_SHA256": "a" * 64})
    _assert_not_ready(server, ["cannot read model file", "nowhere.onnx"])


def test_not_an_onnx_file(start_server, tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf")
    server = start_server(
        {"SLIPWAY_MODEL_URI": f"file://{junk}", "SLIPWAY_MODEL_SHA256": sha256(junk.read_bytes())}
    )
    _assert_not_ready(server, ["onnxruntime cannot load the model"])


@pytest.fixture
def http_model_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A plain HTTP file server on loopback serving a freshly built model (the fsspec path)."""
    data, _ = onnx_models.mlp((4, 16, 3), seed=7)
    (tmp_path / "model.onnx").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", sha256(data)
    httpd.shutdown()
    httpd.server_close()


def test_model_over_http(start_server, http_model_server: tuple[str, str], mlp_model) -> None:
    base, digest = http_model_server
    env = {"SLIPWAY_MODEL_URI": f"{base}/model.onnx", "SLIPWAY_MODEL_SHA256": digest}
    server = start_server(env)
    server.wait_ready()
    x = np.ones((2, 4), np.float32)
    reply = server.client.post("/v2/models/mlp/infer", json=infer_body("x", x)).json()
    got = np.asarray(reply["outputs"][0]["data"], np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, mlp_model[2](x), rtol=1e-5, atol=1e-5)
    assert f"sha256 {digest}" in server.log_text()


def test_http_404_is_a_load_failure(start_server, http_model_server: tuple[str, str]) -> None:
    base, digest = http_model_server
    env = {"SLIPWAY_MODEL_URI": f"{base}/gone.onnx", "SLIPWAY_MODEL_SHA256": digest}
    server = start_server(env)
    _assert_not_ready(server, ["cannot fetch model", "gone.onnx"])


def test_unknown_uri_scheme_is_a_load_failure(start_server) -> None:
    server = start_server(
        {"SLIPWAY_MODEL_URI": "nosuchscheme://bucket/m.onnx", "SLIPWAY_MODEL_SHA256": "b" * 64}
    )
    _assert_not_ready(server, ["cannot fetch model from nosuchscheme://bucket/m.onnx"])


def test_sha256_prefix_and_case_accepted(start_server, mlp_model: tuple) -> None:
    path, digest, _ = mlp_model
    server = start_server(
        {"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": "sha256:" + digest.upper()}
    )
    server.wait_ready()


def _run_with_env(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slipway_model_server"],
        env={"PYTHONPATH": str(SRC), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, ["SLIPWAY_MODEL_URI", "Field required"]),
        ({"SLIPWAY_MODEL_URI": "/m.onnx"}, ["SLIPWAY_MODEL_SHA256 is required"]),
        (
            {"SLIPWAY_MODEL_URI": "/m.onnx", "SLIPWAY_MODEL_SHA256": "abc"},
            ["SLIPWAY_MODEL_SHA256", "64 hexadecimal", "'abc'"],
        ),
        (
            {
                "SLIPWAY_MODEL_URI": "/m.onnx",
                "SLIPWAY_ALLOW_UNVERIFIED_MODEL": "true",
                "SLIPWAY_MAX_BATCH_SIZE": "0",
                "SLIPWAY_BATCHING": "maybe",
            },
            ["SLIPWAY_MAX_BATCH_SIZE", "greater than or equal to 1", "SLIPWAY_BATCHING"],
        ),
        (
            {"SLIPWAY_MODEL_URI": "/m.onnx", "SLIPWAY_MODEL_SHA256": "a" * 64, "SLIPWAY_PORT": "x"},
            ["SLIPWAY_PORT", "integer"],
        ),
    ],
)
def test_bad_settings_exit_with_a_clear_message(env: dict[str, str], words: list[str]) -> None:
    result = _run_with_env(env)
    assert result.returncode == 2
    assert "invalid settings" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
