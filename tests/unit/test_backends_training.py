"""Distributed training rendered by the trainjob and pytorchjob providers, and how each reads its
child's status; the local provider's command line; run names and storage URIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slipway.api.v1alpha1.trainingjob import TrainingJobSpec
from slipway.backends import pipelines_backend, training_backend
from slipway.backends.localtraining import LocalTraining
from slipway.backends.pipelines import SKIPPED, NoPipelines, PipelineRun, run_name
from slipway.backends.pytorchjob import PyTorchJobTraining
from slipway.backends.storage import LocalStore, StorageError, pod_path, pvc_volumes
from slipway.backends.training import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TRAINING_NAME_LIMIT,
    NoTraining,
    TrainingRequest,
)
from slipway.backends.trainjob import TrainJobTraining
from slipway.builders.meta import Owner
from slipway.builders.placement import container_resources, pod_placement, resolve_pool
from slipway.builders.security import SCRATCH_VOLUME
from slipway.config import OperatorConfig

DATASET = "pvc://datasets/digits/v1"
OUTPUT = "pvc://models/digits/g2"
SPEC = TrainingJobSpec.model_validate(
    {
        "dataset": {"name": "digits", "version": "v1"},
        "workers": 3,
        "placement": {"nodePool": "gpu", "gpus": 2},
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
        "runPolicy": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 600,
            "cleanPodPolicy": "Running",
        },
    }
)


@pytest.fixture
def tj_owner() -> Owner:
    return Owner("slipway.dev/v1alpha1", "TrainingJob", "digits-mlp", "ml", "0f3c9a2e-77aa-4b1c")


def request_for(owner: Owner, config: OperatorConfig, spec: TrainingJobSpec) -> TrainingRequest:
    """Build the request the way the TrainingJob reconciler does: pool, resources, PVC mounts."""
    pool = resolve_pool(spec.placement, config.node_pools)
    volumes, mounts = pvc_volumes(DATASET, OUTPUT)
    return TrainingRequest(
        name=run_name(owner, 2, TRAINING_NAME_LIMIT),
        namespace=owner.namespace,
        image=spec.trainer.image,
        args=[
            f"--dataset-uri={pod_path(DATASET)}",
            f"--output-uri={pod_path(OUTPUT)}",
            f"--epochs={spec.trainer.epochs}",
        ],
        env={"SLIPWAY_SEED": "0"},
        workers=spec.workers,
        gpus=spec.placement.gpus,
        resources=container_resources(spec.resources, spec.placement, pool),
        placement=pod_placement(pool),
        run_policy=spec.run_policy,
        volumes=volumes,
        volume_mounts=mounts,
    )


def owned_by(manifest: dict[str, Any], owner: Owner) -> None:
    meta = manifest["metadata"]
    assert meta["namespace"] == "ml"
    assert meta["labels"]["slipway.dev/trainingjob"] == owner.name
    assert meta["ownerReferences"] == [owner.reference()]


def test_trainjob_manifest(tj_owner: Owner, config: OperatorConfig) -> None:
    request = request_for(tj_owner, config, SPEC)
    manifest = TrainJobTraining("torch-distributed").render(tj_owner, request)
    assert manifest is not None
    assert (manifest["apiVersion"], manifest["kind"]) == (
        "trainer.kubeflow.org/v1alpha1",
        "TrainJob",
    )
    assert manifest["metadata"]["name"] == request.name
    owned_by(manifest, tj_owner)
    spec = manifest["spec"]
    assert spec["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
        "name": "torch-distributed",
    }
    trainer = spec["trainer"]
    assert trainer["numNodes"] == 3 and trainer["numProcPerNode"] == 2
    assert trainer["command"] == ["torchrun", "--module", "slipway_trainer"]
    assert trainer["args"][0] == "--dataset-uri=/mnt/pvc/datasets/digits/v1"
    assert trainer["env"] == [{"name": "SLIPWAY_SEED", "value": "0"}]
    assert trainer["resourcesPerNode"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"nvidia.com/gpu": "2"},
    }
    (override,) = spec["podSpecOverrides"]
    assert override["targetJobs"] == [{"name": "node"}]
    assert override["nodeSelector"] == {"slipway.dev/pool": "gpu"}
    assert override["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert [v["name"] for v in override["volumes"]] == [
        SCRATCH_VOLUME,
        "pvc-datasets",
        "pvc-models",
    ]
    (container,) = override["containers"]
    assert container["name"] == "node"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/tmp",
        "/mnt/pvc/datasets",
        "/mnt/pvc/models",
    }
    # v2.0's overrides define no priority class: nothing outside its schema is rendered.
    assert "priorityClassName" not in str(manifest)


def test_trainjob_runtime_comes_from_the_configuration(tj_owner: Owner) -> None:
    config = OperatorConfig.model_validate(
        {"trainjobRuntime": "slipway-torch", "trainjobRuntimeKind": "TrainingRuntime"}
    )
    backend = training_backend("trainjob", config)
    request = TrainingRequest("job-g1-abc", "ml", "trainer:1", ["--epochs=1"], workers=2)
    manifest = backend.render(tj_owner, request)
    assert manifest is not None
    assert manifest["spec"]["runtimeRef"]["name"] == "slipway-torch"
    assert manifest["spec"]["runtimeRef"]["kind"] == "TrainingRuntime"
    assert manifest["spec"]["trainer"]["numProcPerNode"] == 1  # CPU: one process per node
    assert "resourcesPerNode" not in manifest["spec"]["trainer"]
    assert "nodeSelector" not in manifest["spec"]["podSpecOverrides"][0]


def test_pytorchjob_manifest(tj_owner: Owner, config: OperatorConfig) -> None:
    request = request_for(tj_owner, config, SPEC)
    manifest = PyTorchJobTraining().render(tj_owner, request)
    assert manifest is not None
    assert (manifest["apiVersion"], manifest["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    owned_by(manifest, tj_owner)
    spec = manifest["spec"]
    assert spec["nprocPerNode"] == "2"
    assert spec["runPolicy"] == {
        "backoffLimit": 2,
        "cleanPodPolicy": "Running",
        "activeDeadlineSeconds": 3600,
        "ttlSecondsAfterFinished": 600,
    }
    replicas = spec["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 2}
    for replica in replicas.values():
        assert replica["restartPolicy"] == "OnFailure"
        pod = replica["template"]["spec"]
        assert pod["nodeSelector"] == {"slipway.dev/pool": "gpu"}
        assert pod["priorityClassName"] == "inference"
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {v["name"] for v in pod["volumes"]} == {SCRATCH_VOLUME, "pvc-datasets", "pvc-models"}
        assert {"name": SCRATCH_VOLUME, "mountPath": "/tmp"} in container["volumeMounts"]


def test_pytorchjob_with_one_worker_has_only_a_master(tj_owner: Owner) -> None:
    request = TrainingRequest("job-g1-abc", "ml", "trainer:1", ["--epochs=1"], workers=1, gpus=1)
    manifest = PyTorchJobTraining().render(tj_owner, request)
    assert manifest is not None
    assert list(manifest["spec"]["pytorchReplicaSpecs"]) == ["Master"]
    assert "activeDeadlineSeconds" not in manifest["spec"]["runPolicy"]


def condition(kind: str, status: str = "True", **extra: str) -> dict[str, str]:
    return {"type": kind, "status": status, "lastTransitionTime": "2026-11-28T10:00:00Z", **extra}


REQUEST = TrainingRequest("job-g1-abc", "ml", "trainer:1", [], workers=2)


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ({}, PENDING),
        ({"jobsStatus": [{"name": "node", "active": 0, "ready": 0, "succeeded": 0}]}, PENDING),
        ({"jobsStatus": [{"name": "node", "active": 1, "ready": 0}]}, RUNNING),
        ({"conditions": [condition("Suspended")]}, PENDING),
        ({"conditions": [condition("Complete", message="done")]}, SUCCEEDED),
        ({"conditions": [condition("Suspended", "False"), condition("Failed")]}, FAILED),
    ],
)
def test_trainjob_observe(status: dict[str, Any], phase: str) -> None:
    state = TrainJobTraining().observe(REQUEST, {"status": status})
    assert state.phase == phase


def test_trainjob_observe_names_the_failure_and_absence() -> None:
    failed = {
        "status": {"conditions": [condition("Failed", reason="BackoffLimitExceeded", message="x")]}
    }
    state = TrainJobTraining().observe(REQUEST, failed)
    assert state.message == "TrainJob failed (BackoffLimitExceeded): x"
    assert state.finished == "2026-11-28T10:00:00Z" and state.terminal
    assert (
        TrainJobTraining().observe(REQUEST, None).message == "TrainJob job-g1-abc not created yet"
    )


@pytest.mark.parametrize(
    ("conditions", "phase"),
    [
        ([], PENDING),
        ([condition("Created")], PENDING),
        ([condition("Created"), condition("Running")], RUNNING),
        ([condition("Running", "False"), condition("Restarting")], RUNNING),
        ([condition("Running", "False"), condition("Succeeded")], SUCCEEDED),
        ([condition("Running", "False"), condition("Failed", message="OOMKilled")], FAILED),
    ],
)
def test_pytorchjob_observe(conditions: list[dict[str, str]], phase: str) -> None:
    live = {"status": {"conditions": conditions, "startTime": "2026-11-28T09:00:00Z"}}
    state = PyTorchJobTraining().observe(REQUEST, live)
    assert state.phase == phase
    assert state.started == "2026-11-28T09:00:00Z"


def test_run_names_are_deterministic_short_and_per_generation(tj_owner: Owner) -> None:
    first = run_name(tj_owner, 1)
    assert first == run_name(tj_owner, 1) == "digits-mlp-g1-0f3c9a2e"
    assert run_name(tj_owner, 2) != first
    other = Owner(tj_owner.api_version, tj_owner.kind, tj_owner.name, "ml", "99999999-0000")
    assert run_name(other, 1) != first  # a re-created object never finds the old run
    long = Owner(tj_owner.api_version, tj_owner.kind, "9" + "x" * 200, "ml", tj_owner.uid)
    name = run_name(long, 12, TRAINING_NAME_LIMIT)
    assert len(name) <= TRAINING_NAME_LIMIT and name[0].isalpha()
    assert name.endswith("-g12-0f3c9a2e")


def test_storage_uris(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.for_trainer("pvc://datasets/digits/v1") == str(tmp_path / "pvc/datasets/digits/v1")
    assert store.for_trainer("file:///data/x") == "/data/x"
    assert store.for_trainer("s3://bucket/x") == "s3://bucket/x"
    assert pod_path("pvc://models") == "/mnt/pvc/models"
    with pytest.raises(StorageError, match="not allowed"):
        store.for_trainer("pvc://datasets/../../etc")
    with pytest.raises(StorageError, match="valid claim"):
        pod_path("pvc://Bad_Claim/x")


def test_local_training_command_maps_storage(tmp_path: Path) -> None:
    backend = LocalTraining(LocalStore(tmp_path), python="/venv/bin/python")
    request = TrainingRequest(
        "job-g1-abc", "ml", "ignored", [f"--dataset-uri={DATASET}", "--epochs=2"], workers=2
    )
    argv = backend.argv(request)
    assert argv[:6] == [
        "/venv/bin/python",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc-per-node=2",
    ]
    assert argv[-2:] == [f"--dataset-uri={tmp_path}/pvc/datasets/digits/v1", "--epochs=2"]
    assert backend.render(Owner("a", "b", "c", "d", "e"), request) is None
    assert backend.observe(request, None).phase == PENDING  # never started: nothing to read


def test_no_op_providers(config: OperatorConfig) -> None:
    assert NoTraining().observe(REQUEST, None).phase == FAILED
    none = pipelines_backend("none", config)
    assert isinstance(none, NoPipelines)
    run = PipelineRun("x", "ml", "slipway-dataset-ingestion", {})
    assert none.find(run) is None
    started = none.start(run)
    assert started.state == SKIPPED and started.terminal and not started.succeeded
