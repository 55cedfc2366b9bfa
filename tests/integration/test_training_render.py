"""TrainJob and PyTorchJob, as the training providers render them, on the real API server with the
upstream CRDs (Kubeflow Trainer v2.0.0, Training Operator v1.8.1, pinned in
tests/cluster/crds/pins.yaml).

Each manifest is created with strict field validation, so a field the pinned schema does not
define is an error rather than silently pruned. Neither controller runs here: this test plays
Kubeflow Trainer's and the Training Operator's controllers by patching the jobs' status through the
API as they do (Trainer: ``jobsStatus`` while its Jobs run, then the ``Complete`` or ``Failed``
condition; Training Operator: ``Created``, ``Running``, then ``Succeeded`` or ``Failed``) and checks
what ``observe()`` makes of each. The pods the PyTorchJob's templates describe are dry-run created
in a namespace that enforces the restricted Pod Security profile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from slipway.api.v1alpha1.trainingjob import TrainingJobSpec
from slipway.backends.pipelines import run_name
from slipway.backends.pytorchjob import PyTorchJobTraining
from slipway.backends.storage import pod_path, pvc_volumes
from slipway.backends.training import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TRAINING_NAME_LIMIT,
    TrainingBackend,
    TrainingRequest,
)
from slipway.backends.trainjob import TrainJobTraining
from slipway.builders.meta import Owner
from slipway.builders.placement import container_resources, pod_placement, resolve_pool
from slipway.config import OperatorConfig
from slipway.k8s import ApiError, Cluster

from .conftest import POOLS

API = "slipway.dev/v1alpha1"
TRAINER = ("trainer.kubeflow.org/v1alpha1", "TrainJob", "trainjobs")
PYTORCH = ("kubeflow.org/v1", "PyTorchJob", "pytorchjobs")
NOW = "2026-11-28T10:00:00Z"


@pytest.fixture
def owner(kube: Cluster, namespace: str) -> Owner:
    """A real TrainingJob, so the children's owner reference resolves (the GC runs here)."""
    created = kube.apply(
        {
            "apiVersion": API,
            "kind": "TrainingJob",
            "metadata": {"name": "digits-ddp", "namespace": namespace},
            "spec": {
                "dataset": {"name": "digits", "version": "v1"},
                "workers": 3,
                "placement": {"nodePool": "gpu", "gpus": 2},
                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                "runPolicy": {"backoffLimit": 1, "activeDeadlineSeconds": 600},
            },
        }
    )[0]
    meta = created["metadata"]
    return Owner(API, "TrainingJob", meta["name"], namespace, meta["uid"])


def request_of(kube: Cluster, owner: Owner) -> TrainingRequest:
    body = kube.get(API, "TrainingJob", owner.namespace, owner.name)
    assert body is not None
    spec = TrainingJobSpec.model_validate(body["spec"])
    config = OperatorConfig.model_validate(POOLS)
    pool = resolve_pool(spec.placement, config.node_pools)
    data, out = "pvc://datasets/digits/v1", "pvc://models/digits-ddp"
    volumes, mounts = pvc_volumes(data, out)
    return TrainingRequest(
        name=run_name(owner, int(body["metadata"]["generation"]), TRAINING_NAME_LIMIT),
        namespace=owner.namespace,
        image=spec.trainer.image,
        args=[f"--dataset-uri={pod_path(data)}", f"--output-uri={pod_path(out)}", "--epochs=3"],
        env={"SLIPWAY_SEED": "0"},
        workers=spec.workers,
        gpus=spec.placement.gpus,
        resources=container_resources(spec.resources, spec.placement, pool),
        placement=pod_placement(pool),
        run_policy=spec.run_policy,
        volumes=volumes,
        volume_mounts=mounts,
    )


def create_strictly(kube: Cluster, manifest: dict[str, Any], plural: str) -> dict[str, Any]:
    """POST with strict field validation: an unknown field fails instead of being pruned."""
    group_version = manifest["apiVersion"]
    path = f"/apis/{group_version}/namespaces/{manifest['metadata']['namespace']}/{plural}"
    created: dict[str, Any] = kube._call("POST", path, manifest, [("fieldValidation", "Strict")])
    return created


def contains(live: Any, rendered: Any) -> bool:
    """Whether everything rendered is in the live object (the server may add defaults)."""
    if isinstance(rendered, dict):
        return isinstance(live, dict) and all(contains(live.get(k), v) for k, v in rendered.items())
    if isinstance(rendered, list):
        return (
            isinstance(live, list)
            and len(live) == len(rendered)
            and all(contains(a, b) for a, b in zip(live, rendered, strict=True))
        )
    return bool(live == rendered)


def observe(
    kube: Cluster, backend: TrainingBackend, request: TrainingRequest, status: dict[str, Any]
) -> tuple[str, str]:
    """Patch ``status`` as the job's controller would, read the job back, observe it."""
    live = kube.patch_status(
        backend.api_version, backend.kind, request.namespace, request.name, status
    )
    assert live["status"], "the status subresource took the patch"
    state = backend.observe(
        request, kube.get(backend.api_version, backend.kind, request.namespace, request.name)
    )
    return state.phase, state.message


def cond(
    kind: str, status: str = "True", reason: str = "Reason", message: str = ""
) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message or kind,
        "lastTransitionTime": NOW,
    }


def test_trainjob_is_accepted_and_observed(kube: Cluster, namespace: str, owner: Owner) -> None:
    backend = TrainJobTraining("torch-distributed")
    request = request_of(kube, owner)
    assert backend.observe(request, None).phase == PENDING
    manifest = backend.render(owner, request)
    assert manifest is not None
    live = create_strictly(kube, manifest, TRAINER[2])
    assert contains(live["spec"], manifest["spec"]), live["spec"]
    assert live["spec"]["trainer"]["numNodes"] == 3
    assert live["metadata"]["ownerReferences"][0]["uid"] == owner.uid
    assert backend.observe(request, live).phase == PENDING

    # Playing Kubeflow Trainer: its JobSet's Jobs start, then the TrainJob completes.
    running = {
        "jobsStatus": [
            {"name": "node", "active": 1, "ready": 1, "succeeded": 0, "failed": 0, "suspended": 0}
        ]
    }
    assert observe(kube, backend, request, running)[0] == RUNNING
    done = {
        "jobsStatus": [
            {"name": "node", "active": 0, "ready": 0, "succeeded": 1, "failed": 0, "suspended": 0}
        ],
        "conditions": [cond("Complete", reason="JobsCompleted", message="jobs completed")],
    }
    assert observe(kube, backend, request, done) == (SUCCEEDED, "jobs completed")


def test_trainjob_failure_is_reported(kube: Cluster, namespace: str, owner: Owner) -> None:
    backend = TrainJobTraining("torch-distributed")
    request = request_of(kube, owner)
    manifest = backend.render(owner, request)
    assert manifest is not None
    create_strictly(kube, manifest, TRAINER[2])
    suspended = {"conditions": [cond("Suspended", reason="Suspended")]}
    assert observe(kube, backend, request, suspended)[0] == PENDING
    failed = {
        "conditions": [
            cond("Suspended", "False", reason="Resumed"),
            cond("Failed", reason="BackoffLimitExceeded", message="node-0 exited with 1"),
        ]
    }
    phase, message = observe(kube, backend, request, failed)
    assert phase == FAILED
    assert message == "TrainJob failed (BackoffLimitExceeded): node-0 exited with 1"


def test_pytorchjob_is_accepted_and_observed(kube: Cluster, namespace: str, owner: Owner) -> None:
    backend = PyTorchJobTraining()
    request = request_of(kube, owner)
    manifest = backend.render(owner, request)
    assert manifest is not None
    live = create_strictly(kube, manifest, PYTORCH[2])
    assert contains(live["spec"], manifest["spec"]), live["spec"]
    replicas = live["spec"]["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 2)
    assert live["spec"]["runPolicy"]["activeDeadlineSeconds"] == 600

    # Playing the Training Operator: created, running, then succeeded (or failed, below).
    created = {"conditions": [cond("Created", reason="PyTorchJobCreated")]}
    assert observe(kube, backend, request, created)[0] == PENDING
    running = {
        "startTime": NOW,
        "conditions": [cond("Created"), cond("Running", reason="PyTorchJobRunning")],
        "replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 2}},
    }
    assert observe(kube, backend, request, running)[0] == RUNNING
    succeeded = {
        "completionTime": "2026-11-28T10:30:00Z",
        "conditions": [
            cond("Created"),
            cond("Running", "False"),
            cond("Succeeded", reason="PyTorchJobSucceeded", message="job succeeded"),
        ],
    }
    state = backend.observe(
        request,
        kube.patch_status(backend.api_version, backend.kind, namespace, request.name, succeeded),
    )
    assert (state.phase, state.started, state.finished) == (SUCCEEDED, NOW, "2026-11-28T10:30:00Z")
    failed = {
        "conditions": [
            cond("Created"),
            cond("Running", "False"),
            cond("Succeeded", "False"),
            cond("Failed", reason="PyTorchJobFailed", message="Master-0 OOMKilled"),
        ]
    }
    assert observe(kube, backend, request, failed) == (FAILED, "Master-0 OOMKilled")


@pytest.fixture
def restricted(kube: Cluster, namespace: str) -> Iterator[str]:
    name = f"{namespace}-restricted"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    yield name
    kube.delete("v1", "Namespace", None, name)


def test_pytorchjob_pods_meet_the_restricted_profile(
    kube: Cluster, owner: Owner, restricted: str
) -> None:
    manifest = PyTorchJobTraining().render(owner, request_of(kube, owner))
    assert manifest is not None
    path = f"/api/v1/namespaces/{restricted}/pods"
    for kind, replica in manifest["spec"]["pytorchReplicaSpecs"].items():
        template = replica["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": kind.lower(), "namespace": restricted, **template["metadata"]},
            "spec": {**template["spec"], "restartPolicy": replica["restartPolicy"]},
        }
        made = kube._call("POST", path, pod, [("dryRun", "All"), ("fieldValidation", "Strict")])
        assert made["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] is True
    # Without the security settings the same pod is refused: the check can fail.
    bare = {**pod, "spec": {**pod["spec"], "securityContext": {}}}
    bare["spec"]["containers"] = [
        {k: v for k, v in c.items() if k != "securityContext"} for c in pod["spec"]["containers"]
    ]
    with pytest.raises(ApiError) as refused:
        kube._call("POST", path, bare, [("dryRun", "All")])
    assert refused.value.status == 403
