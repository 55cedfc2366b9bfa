"""The tuning concern: run one hyperparameter search (an experiment) and report its trials.

The reconciler resolves a TuningSweep into a ``SweepRequest`` (the search space, the objective,
the budget, and every trial's trainer command line except the searched options and the trial's
output location) under a deterministic name, and hands it to the configured provider:

* ``katib`` (``katib.py``) renders one Katib ``Experiment``; the reconciler applies it as a child
  and passes it back, with its Trials, to ``observe``;
* ``local`` (``localtuning.py``) runs the same search with Optuna on this machine, each trial a
  local trainer process (``start`` launches it once per name, ``observe`` reads its record);
* ``none`` (below) runs nothing.

Whatever the provider, ``observe`` answers a ``SweepState`` in Katib's vocabulary (phases, the
reasons ``ExperimentGoalReached``, ``ExperimentMaxTrialsReached``,
``ExperimentSuggestionEndReached`` and ``ExperimentFailed``, the trial counts), so the sweep's
status has one shape.

Each trial writes to ``<outputRoot>/<trial name>/`` (the trainer's ``--output-uri``), a location
the operator derives itself from names it checked; the model's digest is read from the
``metadata.json`` found there, never from a path a provider reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from slipway.api.v1alpha1.trainingjob import RunPolicy
from slipway.api.v1alpha1.tuningsweep import EarlyStopping, Objective, Parameter, SearchAlgorithm
from slipway.builders.meta import Owner
from slipway.config import OperatorConfig

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
KILLED = "Killed"
EARLY_STOPPED = "EarlyStopped"
METRICS_UNAVAILABLE = "MetricsUnavailable"

# Katib's experiment condition reasons (pkg/controller.v1beta1/experiment/util/status_util.go).
CREATED = "ExperimentCreated"
RUNNING_REASON = "ExperimentRunning"
GOAL_REACHED = "ExperimentGoalReached"
MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
EXPERIMENT_FAILED = "ExperimentFailed"

# Katib validates experiment names to at most 40 characters; a trial is ``<experiment>-<8>``
# and a TrainJob trial's JobSet derives longer names from it (``training.TRAINING_NAME_LIMIT``).
EXPERIMENT_NAME_LIMIT = 31
_TRIAL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class SweepRequest:
    """One experiment, fully resolved: providers decide nothing about the spec.

    ``args`` are the trainer's arguments common to every trial, with URIs as the trials see them
    (pod paths for ``katib``; URIs for ``local``, which maps them to its store). ``options`` maps
    each searched parameter to the argument prefix its value follows (``--learning-rate=``,
    ``--hparam=hidden=``). ``output_root`` is a storage URI: trial ``T`` writes to
    ``<output_root>/T``.
    """

    name: str
    namespace: str
    objective: Objective
    algorithm: SearchAlgorithm
    early_stopping: EarlyStopping | None
    parameters: tuple[Parameter, ...]
    parallel: int
    max_trials: int
    max_failed: int | None
    image: str
    args: tuple[str, ...]
    options: dict[str, str]
    output_root: str
    metrics_collector: str = "File"
    resume_policy: str = "Never"
    workers: int = 1
    gpus: int = 0
    resources: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, Any] = field(default_factory=dict)
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    volumes: tuple[dict[str, Any], ...] = ()
    volume_mounts: tuple[dict[str, Any], ...] = ()

    @property
    def metric_names(self) -> list[str]:
        """The objective metric first, then the additional ones."""
        return [
            self.objective.objective_metric_name,
            *(self.objective.additional_metric_names or []),
        ]

    def trial_args(self, values: dict[str, str], output: str, metrics_file: str = "") -> list[str]:
        """The trainer's full argument list for one trial."""
        searched = [self.options[name] + values[name] for name in self.options]
        extra = [f"--metrics-file={metrics_file}"] if metrics_file else []
        return [*self.args, *searched, f"--output-uri={output}", *extra]


@dataclass(frozen=True)
class TrialCounts:
    """Trials of one experiment by state (Katib's status counters)."""

    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    early_stopped: int = 0
    metrics_unavailable: int = 0

    def to_status(self) -> dict[str, int]:
        return {
            "trials": self.total,
            "trialsPending": self.pending,
            "trialsRunning": self.running,
            "trialsSucceeded": self.succeeded,
            "trialsFailed": self.failed + self.metrics_unavailable,
            "trialsKilled": self.killed,
            "trialsEarlyStopped": self.early_stopped,
        }


@dataclass(frozen=True)
class TrialResult:
    """One trial: its state, parameters and metrics (the last epoch's)."""

    name: str
    state: str
    parameters: dict[str, str] = field(default_factory=dict)
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepState:
    """What the provider says about an experiment."""

    phase: str
    reason: str
    message: str = ""
    counts: TrialCounts = field(default_factory=TrialCounts)
    trials: tuple[TrialResult, ...] = ()
    optimal: str | None = None  # the provider's own choice of best trial, if it makes one
    started: str | None = None
    finished: str | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in (SUCCEEDED, FAILED)


def trial_name_ok(experiment: str, trial: str) -> bool:
    """Whether ``trial`` is a plain DNS label of ``experiment`` (``<experiment>-<suffix>``): the
    only names the operator turns into paths."""
    return trial.startswith(experiment + "-") and bool(_TRIAL.match(trial)) and len(trial) <= 63


def ranked(trials: Iterable[TrialResult], maximize: bool) -> list[TrialResult]:
    """Succeeded trials with an objective value, best first (ties: by name)."""
    done = [t for t in trials if t.state == SUCCEEDED and t.objective is not None]
    sign = -1.0 if maximize else 1.0
    return sorted(done, key=lambda t: (sign * (t.objective or 0.0), t.name))


def goal_reached(objective: Objective, value: float | None) -> bool:
    """Katib's rule: the best value is at least (maximize) or at most (minimize) the goal."""
    if objective.goal is None or value is None:
        return False
    if objective.type == "maximize":
        return value >= objective.goal
    return value <= objective.goal


class TuningBackend(Protocol):
    """Renders, starts, observes and stops experiments."""

    api_version: str
    kind: str

    def render(self, owner: Owner, request: SweepRequest) -> dict[str, Any] | None:
        """The child object that runs ``request`` (pure), or None when the provider has none."""
        ...

    def trials_of(self, request: SweepRequest) -> tuple[str, str, str] | None:
        """(apiVersion, kind, label selector) of the trial objects to read, or None."""
        ...

    def start(self, owner: Owner, request: SweepRequest) -> None:
        """Launch the experiment unless it runs already (process providers); idempotent by name.

        A running experiment takes the request's trial counts (the only change allowed)."""
        ...

    def observe(
        self, request: SweepRequest, live: dict[str, Any] | None, trials: list[dict[str, Any]]
    ) -> SweepState:
        """The experiment's state: from the child and its trials, or from the run's own record."""
        ...

    def stop(self, owner: Owner, keep: set[str]) -> list[str]:
        """Stop the owner's experiments not named in ``keep`` (process providers; CRD providers'
        children are pruned by the reconciler). Returns the names stopped."""
        ...


class NoTuning:
    """Tuning provider ``none``: runs nothing; every sweep is Failed with a message saying why."""

    api_version = "v1"
    kind = "None"
    MESSAGE = (
        "no tuning backend is configured (operator configuration: tuning: none); "
        "configure katib or local"
    )

    def render(self, owner: Owner, request: SweepRequest) -> dict[str, Any] | None:
        return None

    def trials_of(self, request: SweepRequest) -> tuple[str, str, str] | None:
        return None

    def start(self, owner: Owner, request: SweepRequest) -> None:
        return None

    def observe(
        self, request: SweepRequest, live: dict[str, Any] | None, trials: list[dict[str, Any]]
    ) -> SweepState:
        return SweepState(FAILED, "NoTuningBackend", self.MESSAGE)

    def stop(self, owner: Owner, keep: set[str]) -> list[str]:
        return []


_BUILT: dict[tuple[str, str], TuningBackend] = {}


def tuning_backend(name: str, config: OperatorConfig) -> TuningBackend:
    """The provider ``name`` (the configuration's ``tuning``), built once per configuration (the
    local provider keeps the processes it launched, to reap them)."""
    from .katib import KatibTuning
    from .localtuning import LocalTuning

    factories: dict[str, Callable[[OperatorConfig], TuningBackend]] = {
        "katib": KatibTuning.from_config,
        "local": LocalTuning.from_config,
        "none": lambda _: NoTuning(),
    }
    if name not in factories:
        raise ValueError(f"unknown tuning provider {name!r}; known: {sorted(factories)}")
    key = (name, config.model_dump_json())
    if key not in _BUILT:
        _BUILT[key] = factories[name](config)
    return _BUILT[key]
