"""Training provider ``pytorchjob``: the Training Operator v1's PyTorchJob (``kubeflow.org/v1``).

For clusters that run the Training Operator (v1.8, pinned in the tests) instead of Kubeflow
Trainer v2. One ``Master`` replica plus ``workers - 1`` ``Worker`` replicas, each pod one
torchrun node (``nprocPerNode``: one process per GPU, one on CPU; the Training Operator sets
``PET_*``, ``MASTER_ADDR``, ``RANK`` and ``WORLD_SIZE``). The container is called ``pytorch``
(the name the Training Operator looks for). Pods meet the restricted Pod Security profile
(``builders.security``), carry the node pool's placement and the CR's resources, and restart on
failure, resuming from the trainer's checkpoints. ``runPolicy`` maps one to one: backoffLimit,
activeDeadlineSeconds, ttlSecondsAfterFinished, cleanPodPolicy.

Status: conditions Created, Running, Restarting, Succeeded, Failed (the last one true wins);
``startTime``/``completionTime`` are the job's.
"""

from __future__ import annotations

from typing import Any

from slipway.builders.meta import Owner, labels, metadata
from slipway.builders.security import (
    container_security_context,
    pod_security_context,
    scratch_mount,
    scratch_volume,
)

from .training import (
    COMPONENT,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TRAINER_COMMAND,
    TrainingRequest,
    TrainingState,
)
from .trainjob import conditions_of, env_list, is_true

PYTORCH_API = "kubeflow.org/v1"
CONTAINER = "pytorch"


def _replica(owner: Owner, request: TrainingRequest, replicas: int) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": request.image,
        "command": list(TRAINER_COMMAND),
        "args": list(request.args),
        "securityContext": container_security_context(),
        "volumeMounts": [scratch_mount(), *request.volume_mounts],
    }
    if request.env:
        container["env"] = env_list(request.env)
    if request.resources:
        container["resources"] = request.resources
    return {
        "replicas": replicas,
        "restartPolicy": "OnFailure",
        "template": {
            "metadata": {"labels": labels(owner, COMPONENT)},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": [scratch_volume(), *request.volumes],
                **request.placement,
            },
        },
    }


def _run_policy(request: TrainingRequest) -> dict[str, Any]:
    policy = request.run_policy
    out: dict[str, Any] = {
        "backoffLimit": policy.backoff_limit,
        "cleanPodPolicy": policy.clean_pod_policy,
    }
    if policy.active_deadline_seconds is not None:
        out["activeDeadlineSeconds"] = policy.active_deadline_seconds
    if policy.ttl_seconds_after_finished is not None:
        out["ttlSecondsAfterFinished"] = policy.ttl_seconds_after_finished
    return out


class PyTorchJobTraining:
    """The ``pytorchjob`` training provider."""

    api_version = PYTORCH_API
    kind = "PyTorchJob"

    def render(self, owner: Owner, request: TrainingRequest) -> dict[str, Any] | None:
        replicas = {"Master": _replica(owner, request, 1)}
        if request.workers > 1:
            replicas["Worker"] = _replica(owner, request, request.workers - 1)
        return {
            "apiVersion": PYTORCH_API,
            "kind": "PyTorchJob",
            "metadata": metadata(owner, request.name, COMPONENT),
            "spec": {
                "nprocPerNode": str(max(request.gpus, 1)),
                "pytorchReplicaSpecs": replicas,
                "runPolicy": _run_policy(request),
            },
        }

    def start(self, request: TrainingRequest) -> None:
        return None

    def cancel(self, request: TrainingRequest) -> None:
        return None

    def observe(self, request: TrainingRequest, live: dict[str, Any] | None) -> TrainingState:
        if live is None:
            return TrainingState(PENDING, f"PyTorchJob {request.name} not created yet")
        status = live.get("status") or {}
        started, finished = status.get("startTime"), status.get("completionTime")
        conditions = conditions_of(live)
        for kind, phase in (("Succeeded", SUCCEEDED), ("Failed", FAILED)):
            condition = conditions.get(kind)
            if is_true(condition):
                text = str((condition or {}).get("message") or f"PyTorchJob {kind.lower()}")
                return TrainingState(
                    phase,
                    text,
                    started=started,
                    finished=finished or (condition or {}).get("lastTransitionTime"),
                )
        for kind in ("Running", "Restarting"):
            condition = conditions.get(kind)
            if is_true(condition):
                text = str((condition or {}).get("message") or f"PyTorchJob {kind.lower()}")
                return TrainingState(RUNNING, text, started=started)
        return TrainingState(PENDING, "PyTorchJob created; waiting for its pods", started=started)
