"""TrainingJobs end to end: Dataset -> TrainingJob -> ModelDeployment on the real API server, with
the local providers really running (kfp.local pipelines in detached processes; see test_dataset).

The trainer really trains (2 epochs of a small MLP on digits) and writes model.onnx and
metadata.json; the tests check the model's digest against the file itself. One Dataset is
ingested once for the module. Seldon's controller does not run here: the ModelDeployment is
checked up to the SeldonDeployment it renders for the trained model.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.k8s import Cluster
from slipway.reconcilers.runs import FINALIZER
from slipway.runner import RunningOperator, start_in_thread

from .conftest import POOLS, eventually, local_providers
from .test_dataset import (
    API,
    condition,
    dataset,
    get,
    local_path,
    phase_is,
    runs_of,
    wait_for,
)

TRAINER = {"model": "mlp", "hyperparameters": {"hidden": "32"}, "epochs": 2, "batchSize": 64}


def training_job(name: str, namespace: str, dataset_name: str = "digits", **spec: Any) -> dict:
    return {
        "apiVersion": API,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "dataset": {"name": dataset_name, "version": "v1"},
            "trainer": TRAINER,
            **spec,
        },
    }


@pytest.fixture(scope="module")
def digits(kube: Cluster, operator: RunningOperator, local_store: Path) -> Iterator[str]:
    """A namespace whose Dataset ``digits`` has version v1 (ingested once for the module)."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(dataset("digits", ns))
    ready = wait_for(kube, local_store, "Dataset", ns, "digits", phase_is("Ready", "Failed"), "v1")
    assert ready["status"]["latestVersion"] == "v1", ready["status"]
    yield ns
    kube.delete("v1", "Namespace", None, ns)


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_dataset_to_model_deployment(kube: Cluster, digits: str, local_store: Path) -> None:
    """The trained model's URI and digest reach the ModelDeployment, and the digest is the
    file's; an identical second TrainingJob reuses the model without a run."""
    ns, store = digits, local_store
    kube.apply(training_job("mlp", ns))
    kube.apply(
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": "digits", "namespace": ns},
            "spec": {"model": {"trainingJobRef": {"name": "mlp"}}},
        }
    )
    running = wait_for(
        kube, store, "TrainingJob", ns, "mlp", lambda o: (o.get("status") or {}).get("run"), "run"
    )
    assert running["status"]["phase"] in ("Running", "Succeeded")
    done = wait_for(kube, store, "TrainingJob", ns, "mlp", phase_is("Succeeded", "Failed"), "end")
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    model = status["model"]
    onnx = local_path(store, model["uri"])
    assert model["digest"] == sha256_of(onnx)
    metadata = json.loads((onnx.parent / "metadata.json").read_text())
    assert model["fingerprint"] == metadata["fingerprint"]
    assert status["metrics"]["accuracy"] == metadata["metrics"]["validation"]["accuracy"] > 0.5
    assert [h["epoch"] for h in status["history"]] == [1, 2]
    digits_v1 = get(kube, "Dataset", ns, "digits")["status"]["versions"][0]
    lineage = status["lineage"]
    assert lineage["datasetDigest"] == digits_v1["digest"] == metadata["dataset"]["digest"]
    assert (
        lineage["run"] == status["run"]["name"] and lineage["fingerprint"] == status["fingerprint"]
    )
    assert status["startTime"] <= status["completionTime"]
    assert FINALIZER not in (done["metadata"].get("finalizers") or [])
    assert runs_of(store, done) == [status["run"]["name"]]

    deployed = eventually(
        lambda: (get(kube, "ModelDeployment", ns, "digits").get("status") or {}).get("stable"),
        what="the ModelDeployment serving the trained model",
    )
    assert deployed["modelUri"] == model["uri"] and deployed["modelDigest"] == model["digest"]
    md_lineage = get(kube, "ModelDeployment", ns, "digits")["status"]["lineage"]
    assert md_lineage["trainingJob"] == "mlp" and md_lineage["datasetDigest"] == digits_v1["digest"]

    kube.apply(training_job("mlp-again", ns))
    again = wait_for(
        kube, store, "TrainingJob", ns, "mlp-again", phase_is("Succeeded", "Failed"), "reuse"
    )
    assert again["status"]["reusedFrom"] == "mlp"
    assert again["status"]["model"] == model
    assert condition(again, "Ready")["reason"] == "Available"
    assert runs_of(store, again) == []


def test_quality_gate_fails_without_a_model(kube: Cluster, digits: str, local_store: Path) -> None:
    ns, store = digits, local_store
    gate = {"metric": "accuracy", "minimum": 0.999}
    kube.apply(training_job("gated", ns, qualityGate=gate, trainer={**TRAINER, "epochs": 1}))
    done = wait_for(kube, store, "TrainingJob", ns, "gated", phase_is("Succeeded", "Failed"), "end")
    degraded = condition(done, "Degraded")
    assert done["status"]["phase"] == "Failed"
    assert degraded["reason"] == "QualityGateFailed", degraded
    assert "below the minimum 0.999" in degraded["message"]
    assert "model" not in done["status"]


def test_missing_dataset_that_appears_then_deletion_cancels(
    kube: Cluster, digits: str, local_store: Path
) -> None:
    """A TrainingJob waits on a Dataset that does not exist, starts by itself when it is
    ingested (a watch, no timer), and its deletion mid-run cancels the run."""
    ns, store = digits, local_store
    kube.apply(training_job("waits", ns, dataset_name="later", trainer={**TRAINER, "epochs": 50}))
    missing = wait_for(
        kube, store, "TrainingJob", ns, "waits", lambda o: condition(o, "Degraded"), "status", 30
    )
    assert condition(missing, "Degraded")["reason"] == "DatasetNotFound"
    assert not missing["metadata"].get("finalizers")

    kube.apply(dataset("later", ns))
    running = wait_for(
        kube,
        store,
        "TrainingJob",
        ns,
        "waits",
        lambda o: ((o.get("status") or {}).get("run") or {}).get("state") == "RUNNING",
        "its run",
    )
    assert FINALIZER in running["metadata"]["finalizers"]
    run = running["status"]["run"]["name"]
    kube.delete(API, "TrainingJob", ns, "waits")
    eventually(lambda: kube.get(API, "TrainingJob", ns, "waits") is None, what="deleted")
    state = json.loads((store / "runs" / run / "state.json").read_text())
    assert state["state"] == "CANCELED"


def test_operator_restart_mid_run_starts_no_second_run(
    kube: Cluster, dev_cluster: DevCluster, local_store: Path
) -> None:
    """An operator stopped while a run is in flight, and another started: the second finds the
    same run and publishes its result. Both serve a namespace the session operator ignores."""
    ns = f"r-{uuid.uuid4().hex[:10]}"
    store = local_store
    config = OperatorConfig.model_validate({**POOLS, **local_providers(store), "namespace": ns})
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    first = start_in_thread(config, str(dev_cluster.kubeconfig))
    try:
        kube.apply(dataset("digits", ns))
        kube.apply(training_job("restart", ns, trainer={**TRAINER, "epochs": 3}))
        running = wait_for(
            kube,
            store,
            "TrainingJob",
            ns,
            "restart",
            lambda o: ((o.get("status") or {}).get("run") or {}).get("state") == "RUNNING",
            "its run",
        )
    finally:
        first.stop()
    run = running["status"]["run"]
    second = start_in_thread(config, str(dev_cluster.kubeconfig))
    try:
        done = wait_for(
            kube, store, "TrainingJob", ns, "restart", phase_is("Succeeded", "Failed"), "end"
        )
    finally:
        second.stop()
        kube.delete("v1", "Namespace", None, ns)
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    assert status["run"]["name"] == run["name"] and status["run"]["id"] == run["id"]
    assert runs_of(store, done) == [run["name"]]
    assert status["model"]["digest"] == sha256_of(local_path(store, status["model"]["uri"]))
