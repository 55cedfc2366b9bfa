"""Training provider ``trainjob``: Kubeflow Trainer v2's TrainJob (trainer.kubeflow.org/v1alpha1).

Rendered against the pinned Trainer v2.0.0 CRD: ``runtimeRef`` names the configured runtime
(default the ClusterTrainingRuntime ``torch-distributed``, whose trainer job and container are both
called ``node``); ``trainer`` carries image, command (torchrun), args, env, ``numNodes`` (the
workers), ``numProcPerNode`` (one process per GPU, one on CPU) and ``resourcesPerNode`` (CPU, memory
and the pool's GPU resource). Node placement goes where v2.0 puts it, ``podSpecOverrides`` (v2.1
renamed it ``podTemplateOverrides``): nodeSelector, tolerations, volumes and the container's
volume mounts. v2.0's overrides have no field for a priority class or a security context: those
come from the runtime's pod template, so a cluster that enforces the restricted Pod Security profile
needs a runtime whose template sets it (the TrainJob adds the writable scratch volume).

Status: the Trainer sets only the conditions Suspended, Complete and Failed; running is inferred
from ``status.jobsStatus[]`` (a child Job with active or ready pods).
"""

from __future__ import annotations

from typing import Any

from slipway.builders.meta import Owner, labels, metadata
from slipway.builders.security import scratch_mount, scratch_volume

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

TRAINER_API = "trainer.kubeflow.org/v1alpha1"
TRAINER_GROUP = "trainer.kubeflow.org"
NODE = "node"  # the torch runtime's trainer job and container


def conditions_of(live: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The object's conditions by type."""
    items = ((live or {}).get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in items if isinstance(c, dict)}


def is_true(condition: dict[str, Any] | None) -> bool:
    return bool(condition) and str((condition or {}).get("status")) == "True"


def env_list(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


class TrainJobTraining:
    """The ``trainjob`` training provider."""

    api_version = TRAINER_API
    kind = "TrainJob"

    def __init__(
        self, runtime: str = "torch-distributed", runtime_kind: str = "ClusterTrainingRuntime"
    ) -> None:
        self.runtime = runtime
        self.runtime_kind = runtime_kind

    def render(self, owner: Owner, request: TrainingRequest) -> dict[str, Any] | None:
        trainer: dict[str, Any] = {
            "image": request.image,
            "command": list(TRAINER_COMMAND),
            "args": list(request.args),
            "numNodes": request.workers,
            "numProcPerNode": max(request.gpus, 1),
        }
        if request.env:
            trainer["env"] = env_list(request.env)
        if request.resources:
            trainer["resourcesPerNode"] = request.resources
        override: dict[str, Any] = {
            "targetJobs": [{"name": NODE}],
            "volumes": [scratch_volume(), *request.volumes],
            "containers": [
                {"name": NODE, "volumeMounts": [scratch_mount(), *request.volume_mounts]}
            ],
        }
        for key in ("nodeSelector", "tolerations"):
            if request.placement.get(key):
                override[key] = request.placement[key]
        return {
            "apiVersion": TRAINER_API,
            "kind": "TrainJob",
            "metadata": metadata(owner, request.name, COMPONENT),
            "spec": {
                "runtimeRef": {
                    "apiGroup": TRAINER_GROUP,
                    "kind": self.runtime_kind,
                    "name": self.runtime,
                },
                "trainer": trainer,
                "labels": labels(owner, COMPONENT),
                "podSpecOverrides": [override],
            },
        }

    def start(self, request: TrainingRequest) -> None:
        return None

    def cancel(self, request: TrainingRequest) -> None:
        return None

    def observe(self, request: TrainingRequest, live: dict[str, Any] | None) -> TrainingState:
        if live is None:
            return TrainingState(PENDING, f"TrainJob {request.name} not created yet")
        conditions = conditions_of(live)
        done = conditions.get("Complete")
        if is_true(done):
            return TrainingState(
                SUCCEEDED,
                str((done or {}).get("message") or "TrainJob completed"),
                finished=(done or {}).get("lastTransitionTime"),
            )
        failed = conditions.get("Failed")
        if is_true(failed):
            reason = str((failed or {}).get("reason") or "Failed")
            message = str((failed or {}).get("message") or "")
            return TrainingState(
                FAILED,
                f"TrainJob failed ({reason}): {message}".rstrip(": "),
                finished=(failed or {}).get("lastTransitionTime"),
            )
        if is_true(conditions.get("Suspended")):
            return TrainingState(PENDING, "TrainJob is suspended (e.g. waiting in a Kueue queue)")
        jobs = (live.get("status") or {}).get("jobsStatus") or []
        active = sum(int(j.get("active") or 0) + int(j.get("ready") or 0) for j in jobs)
        if active:
            names = ", ".join(str(j.get("name")) for j in jobs)
            return TrainingState(RUNNING, f"TrainJob running (jobs: {names})")
        return TrainingState(PENDING, "TrainJob created; waiting for its pods")
