"""The pipelines concern: start one Kubeflow Pipelines run per (object, generation) and follow it.

A run has a deterministic display name that the reconciler builds from the object's uid and
generation. Run ids are server-generated and display names are not unique on a KFP server, so a
provider's ``start`` looks the name up first and never starts a second run for it: an operator that
restarts in the middle of a run finds that run again. ``status`` reads a run by id (the id the
reconciler keeps in the object's status); ``cancel`` stops it (a finalizer's job on deletion).

States are KFP v2's. SUCCEEDED, SKIPPED, FAILED and CANCELED are terminal: a terminal run is never
started again under the same name, whatever its outcome (KFP's own wait helper forgets CANCELED).

Providers: ``kfp`` (a KFP v2 API server), ``local`` (the same compiled pipelines with ``kfp.local``
in child processes of the operator) and ``none`` (below: starts nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pydantic import JsonValue

from slipway.builders.meta import MAX_NAME, Owner, short_name

INGESTION = "slipway-dataset-ingestion"
TRAINING = "slipway-train-evaluate-export"
PIPELINE_NAMES = (INGESTION, TRAINING)

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
SKIPPED = "SKIPPED"
FAILED = "FAILED"
CANCELING = "CANCELING"
CANCELED = "CANCELED"
PAUSED = "PAUSED"
STATES = (PENDING, RUNNING, SUCCEEDED, SKIPPED, FAILED, CANCELING, CANCELED, PAUSED)
TERMINAL = frozenset({SUCCEEDED, SKIPPED, FAILED, CANCELED})


def run_name(owner: Owner, generation: int, limit: int = MAX_NAME) -> str:
    """The deterministic name of the run for ``owner`` at ``generation``: a DNS-1035 label.

    It holds the owner's name (readable in the KFP UI), the generation and a prefix of the uid, so
    a deleted and re-created object of the same name never finds its predecessor's run. It starts
    with a letter (Kubeflow Trainer requires DNS-1035) and fits in ``limit`` characters (training
    jobs pass ``training.TRAINING_NAME_LIMIT``: their controllers derive longer names from it).
    """
    head = owner.name if owner.name[:1].isalpha() else f"r{owner.name}"
    return short_name(head, f"g{generation}-{owner.uid.replace('-', '')[:8]}", limit=limit)


@dataclass(frozen=True)
class PipelineRun:
    """A run to start: which pipeline, with which parameters, under which deterministic name."""

    name: str
    namespace: str
    pipeline: str
    parameters: dict[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class RunStatus:
    """What the pipelines system says about one run.

    ``message`` is the error of a FAILED run, as precise as the provider can make it (the failing
    task and its error; the local provider gives the component's last error lines, e.g. the
    failing validation rules). ``outputs`` holds the pipeline's return values where the provider
    can read them (``local``: ``{"Output": <value>}``; ``kfp``: empty, since they live in ML
    Metadata: read the data the run wrote instead).
    """

    run_id: str
    state: str
    message: str = ""
    created: str | None = None
    finished: str | None = None
    outputs: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED


class PipelinesBackend(Protocol):
    """Starts, finds, reads and cancels pipeline runs."""

    def find(self, run: PipelineRun) -> RunStatus | None:
        """The run with ``run.name`` (in ``run.namespace``), if one was ever started."""
        ...

    def start(self, run: PipelineRun) -> RunStatus:
        """Start ``run`` unless a run with its name exists; returns that run either way."""
        ...

    def status(self, run_id: str) -> RunStatus | None:
        """The run with id ``run_id``; None when the system knows no such run."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop the run (no-op when it is already terminal or unknown)."""
        ...


class PipelinesError(RuntimeError):
    """The pipelines system could not be reached or refused a request (worth retrying later)."""


class NoPipelines:
    """Pipelines provider ``none``: runs nothing, knows no run.

    ``start`` answers a SKIPPED run (terminal, not succeeded) whose message says why, so a
    reconciler reports the object as not runnable instead of waiting forever; ``find`` and
    ``status`` answer None.
    """

    MESSAGE = "no pipelines backend is configured (operator configuration: pipelines: none)"

    def find(self, run: PipelineRun) -> RunStatus | None:
        return None

    def start(self, run: PipelineRun) -> RunStatus:
        return RunStatus(run_id="", state=SKIPPED, message=self.MESSAGE)

    def status(self, run_id: str) -> RunStatus | None:
        return None

    def cancel(self, run_id: str) -> None:
        return None
