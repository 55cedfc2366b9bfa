"""The V2 REST surface of a real server: health, metadata, inference results and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from server_harness import ServerProcess, infer_body


def test_health_endpoints(mlp_server: ServerProcess) -> None:
    assert mlp_server.client.get("/v2/health/live").json() == {"live": True}
    assert mlp_server.client.get("/v2/health/ready").json() == {"ready": True}
    assert mlp_server.client.get("/v2/models/mlp/ready").status_code == 200
    assert mlp_server.client.get("/v2/models/mlp/versions/3/ready").status_code == 200
    assert mlp_server.client.get("/v2").json()["name"] == "slipway-model-server"


def test_metadata_is_read_from_the_graph(mlp_server: ServerProcess) -> None:
    for path in ("/v2/models/mlp", "/v2/models/mlp/versions/3"):
        meta = mlp_server.client.get(path).json()
        assert meta["name"] == "mlp"
        assert meta["versions"] == ["3"]
        assert meta["platform"] == "onnxruntime_onnx"
        assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
        assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.mark.parametrize("rows", [1, 5, 64])
def test_infer_matches_numpy(mlp_server: ServerProcess, mlp_model: tuple, rows: int) -> None:
    _, _, reference = mlp_model
    x = np.random.default_rng(rows).standard_normal((rows, 4)).astype(np.float32)
    body = infer_body("x", x)
    body["id"] = f"req-{rows}"
    response = mlp_server.client.post("/v2/models/mlp/versions/3/infer", json=body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["model_name"] == "mlp"
    assert reply["model_version"] == "3"
    assert reply["id"] == f"req-{rows}"
    [out] = reply["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("y", "FP32", [rows, 3])
    got = np.asarray(out["data"], dtype=np.float32).reshape(rows, 3)
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)


def test_nested_data_is_accepted(mlp_server: ServerProcess, mlp_model: tuple) -> None:
    x = [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 2, 0]]
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x}]}
    reply = mlp_server.client.post("/v2/models/mlp/infer", json=body).json()
    got = np.asarray(reply["outputs"][0]["data"], dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, mlp_model[2](np.asarray(x, np.float32)), rtol=1e-5, atol=1e-5)


def test_unknown_model_and_version_are_404(mlp_server: ServerProcess) -> None:
    body = infer_body("x", np.zeros((1, 4)))
    response = mlp_server.client.post("/v2/models/other/infer", json=body)
    assert response.status_code == 404
    assert "unknown model 'other'" in response.json()["error"]
    response = mlp_server.client.post("/v2/models/mlp/versions/9/infer", json=body)
    assert response.status_code == 404
    assert "no version '9'" in response.json()["error"]
    assert mlp_server.client.get("/v2/models/mlp/infer").status_code == 405


def _sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_code(mlp_server: ServerProcess) -> None:
    before = mlp_server.client.get("/metrics").text
    good = infer_body("x", np.ones((2, 4)))
    for _ in range(3):
        assert mlp_server.client.post("/v2/models/mlp/infer", json=good).status_code == 200
    bad = mlp_server.client.post("/v2/models/mlp/infer", content=b"{nope")
    assert bad.status_code == 400
    after = mlp_server.client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    total = "slipway_model_requests_total"
    labels = {"model": "mlp", "version": "3"}
    assert _sample(text, total, code="200", **labels) - _sample(before, total, code="200") == 3
    assert _sample(text, total, code="400", **labels) - _sample(before, total, code="400") == 1
    count = "slipway_model_request_duration_seconds_count"
    assert _sample(text, count, **labels) - _sample(before, count, **labels) == 4
    assert 'slipway_model_request_duration_seconds_bucket{le="0.005",model="mlp"' in text
    batch = "slipway_model_batch_size_sum"
    assert _sample(text, batch, **labels) - _sample(before, batch, **labels) == 6
    assert _sample(text, "slipway_model_inflight_requests", **labels) == 0
    assert _sample(text, "slipway_model_ready", **labels) == 1
