"""The image as a Seldon Core v1 custom V2 server, checked against the operator's own rendering.

The operator's Seldon backend (`operator/slipway/backends/seldon.py`) is the one statement of the
SeldonDeployment that runs this image; its unit test keeps `tests/unit/golden/seldondeployment.yaml`
equal to what the code renders. These tests read that file, check the fields Seldon and this
server agree on, and start a server with exactly the rendered environment, probed on exactly the
rendered paths: a change on either side that breaks the contract fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from server_harness import SRC, infer_body

GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "unit" / "golden" / "seldondeployment.yaml"


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    return yaml.safe_load(GOLDEN.read_text())


def parts(sdep: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The predictor's graph node, pod spec and (only) container."""
    [predictor] = sdep["spec"]["predictors"]
    [component] = predictor["componentSpecs"]
    [container] = component["spec"]["containers"]
    return predictor["graph"], component["spec"], container


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_fields_seldon_and_the_server_agree_on(rendered: dict[str, Any]) -> None:
    assert rendered["apiVersion"] == "machinelearning.seldon.io/v1"
    assert rendered["spec"]["protocol"] == "v2"  # Seldon's executor speaks V2 to the container
    graph, pod, container = parts(rendered)
    env = environment(container)
    assert graph["type"] == "MODEL"
    assert "implementation" not in graph  # a custom server, not a prepackaged one
    # Seldon routes /v2/models/<node>/ to the container of that name; the server serves one name.
    assert graph["name"] == container["name"] == env["SLIPWAY_MODEL_NAME"]
    [port] = container["ports"]
    assert port["name"] == "http"
    assert port["containerPort"] == graph["endpoint"]["httpPort"] == int(env["SLIPWAY_PORT"])
    assert graph["endpoint"]["type"] == "REST"
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    drain = float(env["SLIPWAY_DRAIN_TIMEOUT_S"]) + float(env["SLIPWAY_SHUTDOWN_DELAY_S"])
    assert float(env["SLIPWAY_SHUTDOWN_DELAY_S"]) > 0  # time for endpoints to drop the pod
    assert pod["terminationGracePeriodSeconds"] > drain  # SIGKILL only after the drain


def test_server_runs_with_the_rendered_container(
    rendered: dict[str, Any], start_server, mlp_model: tuple
) -> None:
    path, digest, reference = mlp_model
    graph, _, container = parts(rendered)
    env = environment(container)
    assert env["SLIPWAY_MODEL_SHA256"].startswith("sha256:")  # the operator's digest form
    env |= {"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": f"sha256:{digest}"}
    env.pop("SLIPWAY_PORT")  # the harness picks a free loopback port
    env.pop("SLIPWAY_SHUTDOWN_DELAY_S")  # the harness kills the server at the end
    server = start_server(env)
    server.wait_live()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        server._poll(container[probe]["httpGet"]["path"], 200)
    x = np.ones((2, 4), np.float32)
    response = server.client.post(f"/v2/models/{graph['name']}/infer", json=infer_body("x", x))
    assert response.status_code == 200, response.text
    assert response.json()["model_name"] == graph["name"]
    assert response.json()["model_version"] == env["SLIPWAY_MODEL_VERSION"]
    got = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(2, 3)
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
