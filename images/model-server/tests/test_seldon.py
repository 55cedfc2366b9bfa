"""The SeldonDeployment fields the image needs, checked on the rendering and against a server
started with exactly the rendered environment and probed on exactly the rendered paths."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from server_harness import SRC, infer_body
from slipway_model_server.seldon import render_seldon_deployment


def _render(path: str, digest: str) -> dict:
    return render_seldon_deployment(
        name="iris",
        namespace="models",
        image="registry.example/slipway/model-server:0.1.0",
        model_uri=path,
        sha256=digest,
        model_version="7",
        drain_timeout_s=20,
    )


def test_rendered_fields(mlp_model: tuple) -> None:
    sdep = _render("s3://bucket/iris/model.onnx", mlp_model[1])
    assert sdep["apiVersion"] == "machinelearning.seldon.io/v1"
    assert sdep["kind"] == "SeldonDeployment"
    spec = sdep["spec"]
    assert spec["protocol"] == "v2"
    [predictor] = spec["predictors"]
    graph = predictor["graph"]
    assert graph["type"] == "MODEL"
    assert "implementation" not in graph  # a custom server, not a prepackaged one
    assert graph["endpoint"] == {"type": "REST", "httpPort": 9000}
    [component] = predictor["componentSpecs"]
    [container] = component["spec"]["containers"]
    assert container["name"] == graph["name"] == "iris"  # Seldon pairs node and container by name
    assert container["image"] == "registry.example/slipway/model-server:0.1.0"
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/v2/health/live",
        "port": "http",
        "scheme": "HTTP",
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["SLIPWAY_MODEL_URI"] == "s3://bucket/iris/model.onnx"
    assert env["SLIPWAY_MODEL_SHA256"] == mlp_model[1]
    assert env["SLIPWAY_MODEL_NAME"] == graph["name"]
    assert env["SLIPWAY_MODEL_VERSION"] == "7"
    assert env["SLIPWAY_PORT"] == "9000"
    grace = component["spec"]["terminationGracePeriodSeconds"]
    assert int(env["SLIPWAY_DRAIN_TIMEOUT_S"]) == 20
    assert grace > int(env["SLIPWAY_DRAIN_TIMEOUT_S"]) + int(env["SLIPWAY_SHUTDOWN_DELAY_S"])
    assert int(env["SLIPWAY_SHUTDOWN_DELAY_S"]) > 0  # time for endpoints to drop the pod


def test_server_runs_with_the_rendered_container(start_server, mlp_model: tuple) -> None:
    path, digest, reference = mlp_model
    [container] = _render(str(path), digest)["spec"]["predictors"][0]["componentSpecs"][0]["spec"][
        "containers"
    ]
    env = {item["name"]: item["value"] for item in container["env"]}
    env.pop("SLIPWAY_PORT")  # the harness picks a free loopback port instead of 9000
    env.pop("SLIPWAY_SHUTDOWN_DELAY_S")  # the harness kills the server at the end
    server = start_server(env)
    server.wait_live()
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        server._poll(container[probe]["httpGet"]["path"], 200)
    x = np.ones((1, 4), np.float32)
    response = server.client.post("/v2/models/iris/infer", json=infer_body("x", x))
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "7"
    got = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(1, 3)
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)


def test_seldon_port_variable_is_honoured(mlp_model: tuple) -> None:
    """Seldon Core v1 passes the REST port as PREDICTIVE_UNIT_HTTP_PORT."""
    path, digest, _ = mlp_model
    result = subprocess.run(
        [sys.executable, "-c", _PORT_CHECK],
        env={
            "PYTHONPATH": str(SRC),
            "SLIPWAY_MODEL_URI": str(path),
            "SLIPWAY_MODEL_SHA256": digest,
            "PREDICTIVE_UNIT_HTTP_PORT": "9123",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "9123"


_PORT_CHECK = "from slipway_model_server.settings import load_settings; print(load_settings().port)"


def test_cli_prints_the_manifest(mlp_model: tuple) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "slipway_model_server.seldon",
            "--name=iris",
            "--image=img:1",
            "--model-uri=s3://b/m.onnx",
            f"--sha256={mlp_model[1]}",
        ],
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    manifest = json.loads(result.stdout)
    assert manifest["kind"] == "SeldonDeployment"
    assert manifest["spec"]["predictors"][0]["graph"]["name"] == "iris"
