"""TrainingJob: train a model on a pinned dataset version and export it to ONNX.

One worker runs as a Kubeflow Pipelines run; several run as a Training Operator PyTorchJob (DDP).
``runPolicy`` reuses the Training Operator's field names. Metrics and the exported model's URI and
digest land in status, where ModelDeployments and TuningSweeps read them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Model, Name, Placement, ResourceRequirements, Status, cel, defaulted
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


class TrainingJobSpec(Model):
    """Desired state of a TrainingJob."""

    dataset: DatasetRef = Field(description="The dataset version to train on.")
    trainer: Trainer = defaulted(Trainer, "What to train and how.")
    workers: int = Field(
        default=1, ge=1, le=512, description="1: a Kubeflow Pipelines run; >1: a PyTorchJob (DDP)."
    )
    placement: Placement = defaulted(Placement, "GPU node pool and GPUs.")
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory per worker."
    )
    run_policy: RunPolicy = defaulted(RunPolicy, "Job-level policy.")
    output_uri: str | None = Field(
        default=None,
        pattern=r"^(file|s3|gs|pvc)://\S+$",
        description="Where model.onnx and metadata.json go; default: the operator's model store.",
    )


class ExportedModel(Model):
    """The exported ONNX model."""

    uri: str = Field(description="URI of model.onnx.")
    digest: str = Field(description="sha256 of model.onnx.")


class TrainingJobStatus(Status):
    """Observed state of a TrainingJob."""

    metrics: dict[str, float] | None = Field(default=None, description="Final evaluation metrics.")
    model: ExportedModel | None = Field(default=None, description="The exported model.")
    run: str | None = Field(default=None, description="Pipeline run or PyTorchJob name.")
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
            "Accuracy", ".status.metrics.accuracy", type="number", description="Accuracy."
        ),
        AGE,
    ),
)

__all__ = ["INFO", "TrainingJobSpec", "TrainingJobStatus"]
