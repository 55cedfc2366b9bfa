"""The Seldon stand-in's pure parts: reading a SeldonDeployment as Seldon does, and its status.

The processes themselves (start, readiness, restart, update, stop) are exercised for real in
``tests/integration/test_standins.py``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from slipway.devcluster.model_servers import local_model_uri, plan_predictors
from slipway.devcluster.seldon_standin import PredictorState, needs_patch, seldon_status

GOLDEN = Path(__file__).parent / "golden" / "seldondeployment.yaml"


def test_plan_reads_the_operator_rendering_as_seldon_does() -> None:
    sdep = yaml.safe_load(GOLDEN.read_text())
    [plan] = plan_predictors(sdep)
    assert plan.problem == "" and plan.spec is not None
    spec = plan.spec
    assert plan.key == ("ml", "digits-vabababab", "default")
    assert spec.container == "digits"
    assert spec.env["SLIPWAY_MODEL_URI"] == "s3://models/digits/1/model.onnx"
    assert spec.env["SLIPWAY_BATCHING"] == "true"
    # Seldon's pod labels: its own, then the predictor's, then the component's metadata labels;
    # the SeldonDeployment's own metadata labels never reach the pods.
    assert spec.labels["app"] == "digits" and spec.labels["version"] == "vabababab"
    assert spec.labels["seldon-deployment-id"] == "digits-vabababab"
    assert "app.kubernetes.io/managed-by" not in spec.labels
    assert spec.grace_s == 45 and spec.probe_period_s == 5 and spec.probe_failures == 3
    # replicas do not restart anything; the environment does
    scaled = yaml.safe_load(GOLDEN.read_text())
    scaled["spec"]["predictors"][0]["replicas"] = 7
    assert plan_predictors(scaled)[0].spec.fingerprint == spec.fingerprint  # type: ignore[union-attr]
    changed = yaml.safe_load(GOLDEN.read_text())
    env = changed["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["env"]
    env.append({"name": "SLIPWAY_LOG_LEVEL", "value": "debug"})
    assert plan_predictors(changed)[0].spec.fingerprint != spec.fingerprint  # type: ignore[union-attr]


def test_plan_refuses_what_it_cannot_run() -> None:
    sdep = yaml.safe_load(GOLDEN.read_text())
    sdep["spec"]["predictors"][0]["graph"]["name"] = "other"
    [plan] = plan_predictors(sdep)
    assert plan.spec is None and "graph node 'other'" in plan.problem
    sdep = yaml.safe_load(GOLDEN.read_text())
    container = sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "SLIPWAY_MODEL_URI"]
    assert "SLIPWAY_MODEL_URI" in plan_predictors(sdep)[0].problem


def test_pvc_uris_map_under_the_local_store(tmp_path: Path) -> None:
    assert (
        local_model_uri("pvc://models/digits/1/model.onnx", tmp_path)
        == (tmp_path / "pvc" / "models" / "digits" / "1" / "model.onnx").as_uri()
    )
    assert local_model_uri("file:///m.onnx", tmp_path) == "file:///m.onnx"
    assert local_model_uri("s3://b/m.onnx", tmp_path) == "s3://b/m.onnx"


def test_status_follows_seldon_states() -> None:
    ready = PredictorState("default", "Available", "", 4100, "d-default-0-m")
    loading = PredictorState("default", "Creating", "model is loading", 4100, "d-default-0-m")
    failed = PredictorState("default", "Failed", "sha256 mismatch: expected a, got b", 4100, "x")
    exited = PredictorState("default", "Failed", "model server exited with status -9", None, "x")

    available = seldon_status([ready])
    assert available["state"] == "Available" and available["description"] is None
    assert available["replicas"] == 1
    assert available["deploymentStatus"] == {
        "d-default-0-m": {"replicas": 1, "availableReplicas": 1}
    }
    assert available["address"] == {"url": "http://127.0.0.1:4100"}

    creating = seldon_status([loading])
    assert (creating["state"], creating["description"]) == ("Creating", "model is loading")
    assert creating["deploymentStatus"]["d-default-0-m"]["availableReplicas"] == 0

    assert seldon_status([failed])["description"] == "sha256 mismatch: expected a, got b"
    down = seldon_status([exited])
    assert down["state"] == "Failed" and down["replicas"] == 0 and "address" not in down

    # several predictors: any failure fails the whole; the description names the predictor
    canary = PredictorState("canary", "Creating", "model is loading", 4200, "d-canary-0-m")
    mixed = seldon_status([ready, canary])
    assert (mixed["state"], mixed["description"]) == ("Creating", "canary: model is loading")
    both = seldon_status([failed, canary])
    assert both["state"] == "Failed" and both["description"].startswith("default: sha256")
    assert seldon_status([])["state"] == "Creating"


def test_status_is_written_only_when_it_changes() -> None:
    desired = seldon_status([PredictorState("default", "Available", "", 4100, "d")])
    live = {**desired}
    live.pop("description")  # absent on the server is what None asks for
    assert not needs_patch(live, desired)
    assert needs_patch({**live, "state": "Creating"}, desired)
    assert needs_patch({**live, "description": "old reason"}, desired)
