"""The training concern: run one distributed training job and report its phase.

A TrainingJob with more than one worker, or with GPUs, runs as a distributed job: the reconciler
builds a ``TrainingRequest`` (the trainer's CLI arguments, environment, workers, GPUs, resources and
node placement already resolved from the node pool) and hands it to the configured provider.

Providers that render a child object (``trainjob``: Kubeflow Trainer v2's TrainJob, ``pytorchjob``:
the Training Operator's PyTorchJob) do it in ``render`` (pure: the reconciler applies the manifest
and passes the live object back to ``observe``); ``start`` does nothing for them. The process-based
``local`` provider renders nothing (``kind == "None"``), launches in ``start`` (once per name) and
observes its run folder. ``none`` (below) runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from slipway.api.v1alpha1.trainingjob import RunPolicy
from slipway.builders.meta import Owner

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
COMPONENT = "trainer"
# Kubeflow Trainer (through JobSet) and the Training Operator name Jobs, pods and Services after
# the job (``<job>-node-0-0-<hash>``, ``<job>-worker-12``), which must stay valid names too.
TRAINING_NAME_LIMIT = 40
# Each node runs torchrun, which reads its rendezvous from the PET_* variables that Kubeflow
# Trainer's torch runtime and the Training Operator set, and starts one trainer per GPU.
TRAINER_COMMAND = ["torchrun", "--module", "slipway_trainer"]


@dataclass(frozen=True)
class TrainingRequest:
    """One distributed training job, fully resolved: providers decide nothing about the spec.

    ``name`` is deterministic (uid + generation: ``pipelines.run_name(owner, generation,
    TRAINING_NAME_LIMIT)``), a DNS-1035 label of at most ``TRAINING_NAME_LIMIT`` characters.
    ``args`` are the trainer's CLI arguments (images/trainer/README.md), with storage URIs as the
    pods will see them (``storage.pod_path``; the local provider maps pvc:// itself).
    ``resources`` and ``placement`` come from ``builders.placement.container_resources`` and
    ``pod_placement``; ``volumes``/``volume_mounts``: extra pod volumes (``storage.pvc_volumes``).
    """

    name: str
    namespace: str
    image: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    gpus: int = 0
    resources: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, Any] = field(default_factory=dict)
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingState:
    """The phase of a training job: Pending, Running, Succeeded or Failed, with the reason."""

    phase: str
    message: str = ""
    started: str | None = None
    finished: str | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in (SUCCEEDED, FAILED)


class TrainingBackend(Protocol):
    """Renders, starts and observes distributed training jobs."""

    api_version: str
    kind: str

    def render(self, owner: Owner, request: TrainingRequest) -> dict[str, Any] | None:
        """The child object that runs ``request`` (pure), or None when the provider has none."""
        ...

    def start(self, request: TrainingRequest) -> None:
        """Launch ``request`` unless it was ever launched (process providers); raises
        ``localruns.LocalRunError`` when it cannot be."""
        ...

    def observe(self, request: TrainingRequest, live: dict[str, Any] | None) -> TrainingState:
        """The job's phase, from the live child object (CRD providers) or the run's own record."""
        ...

    def cancel(self, request: TrainingRequest) -> None:
        """Stop a process-based run (a finalizer's job); CRD providers: nothing (the garbage
        collector deletes the child with its owner)."""
        ...


class NoTraining:
    """Training provider ``none``: runs nothing; every job is Failed with a message saying why."""

    api_version = "v1"
    kind = "None"
    MESSAGE = (
        "no distributed training backend is configured (operator configuration: training: none); "
        "use one worker without GPUs, or configure trainjob, pytorchjob or local"
    )

    def render(self, owner: Owner, request: TrainingRequest) -> dict[str, Any] | None:
        return None

    def start(self, request: TrainingRequest) -> None:
        return None

    def observe(self, request: TrainingRequest, live: dict[str, Any] | None) -> TrainingState:
        return TrainingState(phase=FAILED, message=self.MESSAGE)

    def cancel(self, request: TrainingRequest) -> None:
        return None
