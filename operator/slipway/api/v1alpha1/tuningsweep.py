"""TuningSweep: hyperparameter search over a TrainingJob template, run as a Katib Experiment.

The field names are Katib's (``objective``, ``algorithm``, ``earlyStopping``, ``parameters`` with
``parameterType`` and ``feasibleSpace``, the trial counts) so Katib users feel at home; bounds are
numbers rather than Katib's strings so the API server can check ``min <= max`` at admission.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Model, ObjectReference, Status, cel
from .kinds import AGE, PHASE, KindInfo, PrinterColumn, condition_column
from .trainingjob import TrainingJobSpec


class Objective(Model):
    """What the sweep optimises (Katib's objective)."""

    type: Literal["maximize", "minimize"] = Field(description="Direction of optimisation.")
    goal: float | None = Field(default=None, description="Stop when the best trial reaches this.")
    objective_metric_name: str = Field(
        min_length=1, max_length=63, description="Metric the trainer prints, e.g. accuracy."
    )
    additional_metric_names: list[str] | None = Field(
        default=None, max_length=16, description="Other metrics to record."
    )


class Setting(Model):
    """A name/value algorithm setting."""

    name: str = Field(min_length=1, max_length=63, description="Setting name.")
    value: str = Field(max_length=256, description="Setting value.")


class Algorithm(Model):
    """A search or early-stopping algorithm and its settings."""

    algorithm_name: str = Field(
        min_length=1,
        max_length=63,
        description="random, grid, bayesianoptimization, tpe, medianstop...",
    )
    algorithm_settings: list[Setting] | None = Field(
        default=None, max_length=32, description="Algorithm settings."
    )


class FeasibleSpace(Model):
    """The values a parameter may take."""

    min: float | None = Field(default=None, description="Lower bound (int and double).")
    max: float | None = Field(default=None, description="Upper bound (int and double).")
    step: float | None = Field(default=None, gt=0, description="Step between values.")
    values: list[str] | None = Field(
        default=None,
        alias="list",
        max_length=256,
        description="Values (categorical and discrete).",
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
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z][a-zA-Z0-9_]*$",
        description="Hyperparameter name: learningRate, batchSize, optimizer or a trainer "
        "hyperparameter.",
    )
    parameter_type: Literal["int", "double", "categorical", "discrete"] = Field(
        description="Parameter type."
    )
    feasible_space: FeasibleSpace = Field(description="Allowed values.")


class TrainingJobTemplate(Model):
    """The TrainingJob each trial runs, with the searched parameters substituted."""

    spec: TrainingJobSpec = Field(description="TrainingJob spec of every trial.")


class Promotion(Model):
    """What to do with the best trial's model."""

    model_deployment_ref: ObjectReference | None = Field(
        default=None, description="ModelDeployment whose model is set to the best trial's."
    )


class TuningSweepSpec(Model):
    """Desired state of a TuningSweep."""

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
    )

    trial_template: TrainingJobTemplate = Field(description="The TrainingJob every trial runs.")
    objective: Objective = Field(description="What to optimise.")
    algorithm: Algorithm = Field(description="Search algorithm.")
    early_stopping: Algorithm | None = Field(default=None, description="Early stopping.")
    parameters: list[Parameter] = Field(
        min_length=1, max_length=32, description="Searched hyperparameters."
    )
    parallel_trial_count: int = Field(default=2, ge=1, le=100, description="Trials at once.")
    max_trial_count: int = Field(default=10, ge=1, le=10000, description="Trials in all.")
    max_failed_trial_count: int | None = Field(
        default=None, ge=0, description="Failed trials before the sweep fails."
    )
    promotion: Promotion | None = Field(default=None, description="Promote the best trial.")


class BestTrial(Model):
    """The best trial so far."""

    name: str = Field(description="Trial name.")
    parameters: dict[str, str] = Field(description="Its parameter values.")
    metrics: dict[str, float] = Field(description="Its metrics.")
    model_uri: str | None = Field(default=None, description="Its exported model.")
    model_digest: str | None = Field(default=None, description="Digest of that model.")


class TuningSweepStatus(Status):
    """Observed state of a TuningSweep."""

    experiment: str | None = Field(default=None, description="Katib Experiment name.")
    trials: int | None = Field(default=None, description="Trials created.")
    trials_succeeded: int | None = Field(default=None, description="Trials succeeded.")
    trials_failed: int | None = Field(default=None, description="Trials failed.")
    best_trial: BestTrial | None = Field(default=None, description="Best trial so far.")
    promoted: bool | None = Field(default=None, description="Whether the best trial was promoted.")


INFO = KindInfo(
    kind="TuningSweep",
    plural="tuningsweeps",
    short_names=("sweep",),
    description="TuningSweep searches hyperparameters of a TrainingJob template with Katib.",
    columns=(
        condition_column("Ready"),
        PHASE,
        PrinterColumn("Objective", ".spec.objective.objectiveMetricName", description="Metric."),
        PrinterColumn("Trials", ".status.trials", type="integer", description="Trials created."),
        PrinterColumn("Best", ".status.bestTrial.name", description="Best trial."),
        AGE,
    ),
)

__all__ = ["INFO", "TuningSweepSpec", "TuningSweepStatus"]
