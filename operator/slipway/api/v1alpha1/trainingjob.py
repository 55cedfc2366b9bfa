"""TrainingJob: train a model on a pinned dataset version and export it to ONNX.

One worker without GPUs runs the train-evaluate-export Kubeflow pipeline; more workers or GPUs run
the configured distributed provider (a Kubeflow Trainer TrainJob, a Training Operator PyTorchJob,
or torchrun on the operator's machine). ``runPolicy`` reuses the Training Operator's field names.
A quality gate decides whether the model is published; metrics, the exported model's URI and
digest, and the lineage land in status, where ModelDeployments and TuningSweeps read them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import (
    Digest,
    Model,
    Name,
    Placement,
    ResourceRequirements,
    Status,
    cel,
    defaulted,
)
from .kinds import AGE, PHASE, KindInfo, PrinterColumn, condition_column


class DatasetRef(Model):
    """A Dataset and the version (or digest) to train on: training on 'latest' is not allowed."""

    model_config = cel(
        (
            "has(self.version) != has(self.digest)",
            "set exactly one of spec.dataset.version and spec.dataset.digest",
        ),
    )

    name: Name = Field(description="Dataset name (same namespace).")
    version: str | None = Field(
        default=None, max_length=63, description="Dataset version, e.g. v3."
    )
    digest: str | None = Field(
        default=None, pattern=r"^sha256:[a-f0-9]{64}$", description="Dataset digest."
    )


class Trainer(Model):
    """The trainer image and what it trains."""

    image: str = Field(
        default="ghcr.io/slipway-dev/slipway-trainer:0.1.0",
        min_length=1,
        description="Trainer image.",
    )
    model: Literal["mlp", "cnn"] = Field(default="mlp", description="Model architecture.")
    hyperparameters: dict[str, str] | None = Field(
        default=None, description="Architecture hyperparameters, e.g. {hidden: '128'}."
    )
    epochs: int = Field(default=10, ge=1, le=10000, description="Training epochs.")
    batch_size: int = Field(default=64, ge=1, le=65536, description="Batch size per worker.")
    learning_rate: float = Field(default=0.001, gt=0, le=10, description="Learning rate.")
    optimizer: Literal["adam", "adamw", "sgd"] = Field(default="adam", description="Optimizer.")
    seed: int = Field(
        default=0, ge=0, description="Random seed (training is deterministic on CPU)."
    )


class RunPolicy(Model):
    """Job-level policy (the Training Operator's runPolicy)."""

    backoff_limit: int = Field(default=3, ge=0, le=100, description="Retries before failing.")
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Seconds the job may run."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Seconds to keep finished pods' job."
    )
    clean_pod_policy: Literal["None", "Running", "All"] = Field(
        default="None", description="Which pods to delete when the job ends."
    )


class QualityGate(Model):
    """The held-out metric a model must reach to be published."""

    metric: Literal["accuracy", "macroPrecision", "macroRecall"] = Field(
        default="accuracy", description="Validation metric the gate reads."
    )
    minimum: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Smallest accepted value; below it the job fails (QualityGateFailed) and "
        "publishes no model. 0: every model passes.",
    )


class TrainingJobSpec(Model):
    """Desired state of a TrainingJob."""

    dataset: DatasetRef = Field(description="The dataset version to train on.")
    trainer: Trainer = defaulted(Trainer, "What to train and how.")
    workers: int = Field(
        default=1,
        ge=1,
        le=512,
        description="1 without GPUs: the train-evaluate-export pipeline; more workers or GPUs: the "
        "operator's distributed training provider (DDP).",
    )
    placement: Placement = defaulted(Placement, "GPU node pool and GPUs.")
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory per worker."
    )
    run_policy: RunPolicy = defaulted(RunPolicy, "Job-level policy.")
    output_uri: str = Field(
        default="pvc://slipway-models",
        max_length=2048,
        pattern=r"^(file|s3|gs|pvc)://\S+$",
        description="Model store: each run writes model.onnx, metadata.json and metrics.json to "
        "<outputUri>/<namespace>/<run>/.",
    )
    quality_gate: QualityGate = defaulted(QualityGate, "Held-out quality the model must reach.")
    reuse: Literal["IfIdentical", "Never"] = Field(
        default="IfIdentical",
        description="IfIdentical: when a Succeeded TrainingJob in this namespace has the same "
        "fingerprint (dataset digest, trainer, parameters), take its model instead of training. "
        "Never: always train.",
    )


class ExportedModel(Model):
    """The exported ONNX model, as the trainer's metadata.json describes it."""

    uri: str = Field(description="URI of model.onnx.")
    digest: Digest = Field(description="sha256 of model.onnx.")
    fingerprint: str | None = Field(
        default=None, description="The trainer's own run fingerprint (metadata.json)."
    )


class EpochMetrics(Model):
    """One epoch of training, as the trainer records it."""

    epoch: int = Field(description="Epoch number, from 1.")
    loss: float | None = Field(default=None, description="Training loss.")
    accuracy: float | None = Field(default=None, description="Training accuracy.")
    val_loss: float | None = Field(default=None, description="Validation loss.")
    val_accuracy: float | None = Field(default=None, description="Validation accuracy.")


class TrainingRun(Model):
    """The run of the current generation: a pipeline run, a distributed job or a local process."""

    name: str = Field(description="Deterministic run name (object uid + generation).")
    id: str | None = Field(default=None, description="Run id in the system running it.")
    provider: str = Field(description="pipelines/<provider> or training/<provider>.")
    generation: int = Field(description="The .metadata.generation the run trains.")
    state: str = Field(description="The run's state as its system reports it.")
    message: str | None = Field(default=None, description="The system's last word on the run.")
    dataset_uri: str = Field(description="The dataset version the run reads.")
    created: str | None = Field(default=None, description="When the run started (RFC 3339).")
    finished: str | None = Field(default=None, description="When the run ended (RFC 3339).")


MAX_HISTORY = 100


class TrainingJobStatus(Status):
    """Observed state of a TrainingJob."""

    metrics: dict[str, float] | None = Field(
        default=None, description="Final held-out validation metrics of the exported model."
    )
    history: list[EpochMetrics] | None = Field(
        default=None,
        max_length=MAX_HISTORY,
        description=f"Per-epoch metrics (the last {MAX_HISTORY} epochs).",
    )
    model: ExportedModel | None = Field(
        default=None, description="The exported model; absent unless the job Succeeded."
    )
    fingerprint: str | None = Field(
        default=None,
        description="sha256 of the resolved inputs (dataset digest, trainer, parameters, "
        "workers, GPUs): equal fingerprints train the same model.",
    )
    reused_from: str | None = Field(
        default=None, description="The TrainingJob whose model was reused (same fingerprint)."
    )
    run: TrainingRun | None = Field(default=None, description="The current generation's run.")
    start_time: str | None = Field(default=None, description="When training started.")
    completion_time: str | None = Field(default=None, description="When training finished.")


INFO = KindInfo(
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tj",),
    description="TrainingJob trains a model on a dataset version and exports it to ONNX.",
    columns=(
        condition_column("Ready"),
        PHASE,
        PrinterColumn("Dataset", ".spec.dataset.name", description="Dataset name."),
        PrinterColumn("Workers", ".spec.workers", type="integer", description="Workers."),
        PrinterColumn(
            "Accuracy",
            ".status.metrics.accuracy",
            type="number",
            description="Held-out accuracy.",
        ),
        PrinterColumn("Reused", ".status.reusedFrom", description="Model reused from.", priority=1),
        AGE,
    ),
)

__all__ = ["INFO", "TrainingJobSpec", "TrainingJobStatus"]
