"""TuningSweep: hyperparameter search over a TrainingJob template (Katib on a cluster, Optuna on
one machine).

The field names are Katib's (``objective``, ``algorithm``, ``earlyStopping``, ``parameters`` with
``parameterType`` and ``feasibleSpace``, the trial counts, ``resumePolicy``) so Katib users feel at
home; bounds are numbers rather than Katib's strings so the API server can check them at admission.
The algorithms are the Katib names that both providers serve (Katib's suggestion services and
Optuna's samplers): a name outside that list is refused at admission, with the list.

Status has the same shape whatever the provider: the trial counts of the current experiment, a
bounded table of its best trials, and ``bestTrial``, the result ModelDeployments serve (see
``TuningSweepStatus``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import Digest, Model, Status, cel
from .kinds import AGE, PHASE, KindInfo, PrinterColumn, condition_column
from .trainingjob import TrainingJobSpec

# Katib's algorithm names that Optuna serves too (bayesianoptimization: the Gaussian-process
# sampler). Katib's hyperband, pbt, enas and darts need a different trial contract.
ALGORITHMS = (
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "sobol",
    "bayesianoptimization",
)
Algorithm = Literal[
    "random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization"
]
MAX_BEST_TRIALS = 5
_NUMBER = "^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$"  # no escapes: CEL text
MetricName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z][\w.-]*$")]


class Objective(Model):
    """What the sweep optimises (Katib's objective)."""

    model_config = cel(
        (
            "!has(self.additionalMetricNames) || "
            "!(self.objectiveMetricName in self.additionalMetricNames)",
            "spec.objective.additionalMetricNames must not repeat objectiveMetricName",
        ),
    )

    type: Literal["maximize", "minimize"] = Field(description="Direction of optimisation.")
    goal: float | None = Field(
        default=None, description="Stop when the best trial reaches this (>= to maximize)."
    )
    objective_metric_name: MetricName = Field(
        description="Metric the trainer reports each epoch: val_accuracy, val_loss, accuracy, loss."
    )
    additional_metric_names: list[MetricName] | None = Field(
        default=None, max_length=16, description="Other metrics to record for every trial."
    )


class Setting(Model):
    """A name/value algorithm setting (Katib's)."""

    name: str = Field(min_length=1, max_length=63, description="Setting name.")
    value: str = Field(max_length=256, description="Setting value.")


class SearchAlgorithm(Model):
    """The search algorithm and its settings."""

    algorithm_name: Algorithm = Field(
        description="Katib algorithm name: random, grid, tpe, multivariate-tpe, cmaes, sobol or "
        "bayesianoptimization (hyperband, pbt, enas and darts are not offered)."
    )
    algorithm_settings: list[Setting] | None = Field(
        default=None,
        max_length=32,
        description="Settings: random_state (all), n_startup_trials and n_ei_candidates (tpe, "
        "multivariate-tpe), sigma (cmaes), n_initial_points (bayesianoptimization).",
    )


class EarlyStopping(Model):
    """Early stopping of unpromising trials (Katib's medianstop)."""

    algorithm_name: Literal["medianstop"] = Field(
        description="medianstop: stop a trial whose metric at an epoch is worse than the median "
        "of the finished trials' at that epoch."
    )
    algorithm_settings: list[Setting] | None = Field(
        default=None,
        max_length=8,
        description="min_trials_required (finished trials before any stop, default 3) and "
        "start_step (epochs a trial always runs, default 4).",
    )


class FeasibleSpace(Model):
    """The values a parameter may take."""

    min: float | None = Field(default=None, description="Lower bound (int and double).")
    max: float | None = Field(default=None, description="Upper bound (int and double).")
    step: float | None = Field(default=None, gt=0, description="Step between values.")
    values: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        alias="list",
        max_length=256,
        description="Values (categorical and discrete; discrete values are numbers).",
    )
    distribution: Literal["uniform", "logUniform"] | None = Field(
        default=None, description="How int and double values are drawn (default uniform)."
    )


class Parameter(Model):
    """One searched hyperparameter."""

    model_config = cel(
        (
            "!(self.parameterType in ['int', 'double']) || "
            "has(self.feasibleSpace.min) && has(self.feasibleSpace.max) && "
            "self.feasibleSpace.min <= self.feasibleSpace.max",
            "int and double parameters need feasibleSpace.min <= feasibleSpace.max",
        ),
        (
            "!(self.parameterType in ['categorical', 'discrete']) || "
            "has(self.feasibleSpace.list) && self.feasibleSpace.list.size() > 0",
            "categorical and discrete parameters need a non-empty feasibleSpace.list",
        ),
        (
            "!has(self.feasibleSpace.step) || !has(self.feasibleSpace.min) || "
            "!has(self.feasibleSpace.max) || "
            "self.feasibleSpace.step <= self.feasibleSpace.max - self.feasibleSpace.min",
            "feasibleSpace.step must not be larger than feasibleSpace.max - feasibleSpace.min",
        ),
        (
            "!(self.parameterType in ['int', 'double']) || !has(self.feasibleSpace.list)",
            "int and double parameters take feasibleSpace.min and max, not feasibleSpace.list",
        ),
        (
            "!(self.parameterType in ['categorical', 'discrete']) || "
            "!has(self.feasibleSpace.min) && !has(self.feasibleSpace.max) && "
            "!has(self.feasibleSpace.step) && !has(self.feasibleSpace.distribution)",
            "categorical and discrete parameters take feasibleSpace.list only",
        ),
        (
            "self.parameterType != 'discrete' || !has(self.feasibleSpace.list) || "
            f"self.feasibleSpace.list.all(v, v.matches('{_NUMBER}'))",
            "discrete parameters need numbers in feasibleSpace.list",
        ),
        (
            "!has(self.feasibleSpace.distribution) || "
            "self.feasibleSpace.distribution != 'logUniform' || "
            "has(self.feasibleSpace.min) && self.feasibleSpace.min > 0.0",
            "a logUniform distribution needs feasibleSpace.min > 0",
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z][a-zA-Z0-9_]*$",
        description="learningRate, batchSize, optimizer, epochs, seed, momentum, weightDecay, or "
        "a hyperparameter of the template's model (mlp: hidden, dropout, activation; cnn: "
        "channels, kernel_size, hidden, dropout).",
    )
    parameter_type: Literal["int", "double", "categorical", "discrete"] = Field(
        description="Parameter type."
    )
    feasible_space: FeasibleSpace = Field(description="Allowed values.")


class TrainingJobTemplate(Model):
    """The TrainingJob each trial runs, with the searched parameters substituted."""

    spec: TrainingJobSpec = Field(description="TrainingJob spec of every trial.")


class TuningSweepSpec(Model):
    """Desired state of a TuningSweep.

    Only the three trial counts can change on a running experiment (as in Katib); any other
    change starts a new experiment, and the best model of an earlier one stays in status until
    the new one succeeds.
    """

    model_config = cel(
        (
            "self.parallelTrialCount <= self.maxTrialCount",
            "spec.parallelTrialCount must be <= spec.maxTrialCount",
        ),
        (
            "!has(self.maxFailedTrialCount) || self.maxFailedTrialCount <= self.maxTrialCount",
            "spec.maxFailedTrialCount must be <= spec.maxTrialCount",
        ),
        (
            "self.parameters.all(p, self.parameters.exists_one(q, q.name == p.name))",
            "spec.parameters names must be unique",
        ),
        (
            "self.algorithm.algorithmName != 'grid' || "
            "self.parameters.all(p, p.parameterType != 'double' || has(p.feasibleSpace.step))",
            "grid search needs feasibleSpace.step on every double parameter",
        ),
    )

    trial_template: TrainingJobTemplate = Field(description="The TrainingJob every trial runs.")
    objective: Objective = Field(description="What to optimise.")
    algorithm: SearchAlgorithm = Field(description="Search algorithm.")
    early_stopping: EarlyStopping | None = Field(
        default=None, description="Stop unpromising trials early."
    )
    parameters: list[Parameter] = Field(
        min_length=1, max_length=32, description="Searched hyperparameters."
    )
    parallel_trial_count: int = Field(default=2, ge=1, le=100, description="Trials at once.")
    max_trial_count: int = Field(default=10, ge=1, le=10000, description="Trials in all.")
    max_failed_trial_count: int | None = Field(
        default=None,
        ge=0,
        description="The experiment fails once this many trials failed (Katib's rule).",
    )
    metrics_collector: Literal["File", "StdOut"] = Field(
        default="File",
        description="How Katib collects a trial's metrics: File reads the trainer's "
        "--metrics-file (one JSON line per epoch), StdOut the trainer's Katib line on stdout.",
    )
    resume_policy: Literal["Never", "LongRunning", "FromVolume"] = Field(
        default="Never",
        description="Katib's resumePolicy: whether a completed Experiment can take more trials "
        "(a raised maxTrialCount). The local provider keeps every study and always resumes.",
    )


class TrialModel(Model):
    """A trial's exported model, from the trainer's metadata.json at the trial's location."""

    uri: str = Field(description="URI of model.onnx.")
    digest: Digest = Field(description="sha256 of model.onnx.")


class TrialSummary(Model):
    """One trial of the best-trials table."""

    name: str = Field(description="Trial name.")
    parameters: dict[str, str] = Field(description="Its parameter values.")
    objective: float | None = Field(default=None, description="Its objective value.")
    metrics: dict[str, float] | None = Field(default=None, description="Its metrics (last epoch).")
    model: TrialModel | None = Field(default=None, description="Its exported model.")


class BestTrial(Model):
    """The sweep's result: the best trial of the latest experiment that succeeded."""

    name: str = Field(description="Trial name.")
    experiment: str | None = Field(default=None, description="The experiment it belongs to.")
    parameters: dict[str, str] = Field(description="Its parameter values.")
    metrics: dict[str, float] = Field(description="Its metrics (last epoch).")
    objective: float | None = Field(default=None, description="Its objective value.")
    model_uri: str | None = Field(default=None, description="Its exported model.")
    model_digest: str | None = Field(default=None, description="Digest of that model.")


class SweepExperiment(Model):
    """The current experiment: a Katib Experiment, or an Optuna study run locally."""

    name: str = Field(description="Experiment (or study) name: the sweep, a hash of the spec.")
    provider: str = Field(description="Tuning provider: katib, local or none.")
    generation: int = Field(description="The .metadata.generation it runs.")
    dataset: str | None = Field(default=None, description="The Dataset trials read.")
    dataset_version: str | None = Field(default=None, description="Its version.")
    dataset_digest: str | None = Field(default=None, description="That version's digest.")
    dataset_uri: str | None = Field(default=None, description="Where that version is stored.")
    reason: str | None = Field(default=None, description="The provider's last condition reason.")
    start_time: str | None = Field(default=None, description="When it started (RFC 3339).")
    completion_time: str | None = Field(default=None, description="When it ended (RFC 3339).")


class TuningSweepStatus(Status):
    """Observed state of a TuningSweep (the same shape for every provider)."""

    experiment: SweepExperiment | None = Field(default=None, description="Current experiment.")
    trials: int | None = Field(default=None, description="Trials created.")
    trials_pending: int | None = Field(default=None, description="Trials not started yet.")
    trials_running: int | None = Field(default=None, description="Trials running.")
    trials_succeeded: int | None = Field(default=None, description="Trials succeeded.")
    trials_failed: int | None = Field(default=None, description="Trials failed.")
    trials_killed: int | None = Field(default=None, description="Trials stopped at the end.")
    trials_early_stopped: int | None = Field(default=None, description="Trials stopped early.")
    best_objective: float | None = Field(
        default=None, description="Best objective value of the current experiment."
    )
    best_trials: list[TrialSummary] | None = Field(
        default=None,
        max_length=MAX_BEST_TRIALS,
        description=f"The current experiment's best succeeded trials (up to {MAX_BEST_TRIALS}).",
    )
    best_trial: BestTrial | None = Field(
        default=None,
        description="The model ModelDeployments serve: the best trial of the latest experiment "
        "that succeeded; a later experiment replaces it only once it succeeds too.",
    )


INFO = KindInfo(
    kind="TuningSweep",
    plural="tuningsweeps",
    short_names=("sweep",),
    description="TuningSweep searches hyperparameters of a TrainingJob template (Katib or Optuna).",
    columns=(
        condition_column("Ready"),
        PHASE,
        PrinterColumn("Objective", ".spec.objective.objectiveMetricName", description="Metric."),
        PrinterColumn("Trials", ".status.trials", type="integer", description="Trials created."),
        PrinterColumn(
            "Succeeded", ".status.trialsSucceeded", type="integer", description="Trials succeeded."
        ),
        PrinterColumn(
            "Stopped",
            ".status.trialsEarlyStopped",
            type="integer",
            description="Trials stopped early.",
        ),
        PrinterColumn(
            "Best", ".status.bestObjective", type="number", description="Best objective value."
        ),
        PrinterColumn(
            "Best-Trial", ".status.bestTrial.name", description="Served trial.", priority=1
        ),
        PrinterColumn(
            "Experiment", ".status.experiment.name", description="Experiment.", priority=1
        ),
        AGE,
    ),
)

__all__ = ["ALGORITHMS", "INFO", "MAX_BEST_TRIALS", "TuningSweepSpec", "TuningSweepStatus"]
