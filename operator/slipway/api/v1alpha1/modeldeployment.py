"""ModelDeployment: serve a model through Seldon behind an Istio traffic split.

The spec names one model (a URI with its digest, or the output of a TrainingJob or TuningSweep),
the server and its scaling, the GPU placement, and a rollout policy. The status records the live
versions (stable and candidate) with their traffic weights: that record is what lets a level-based
reconcile know which version was live before the spec changed. The rollout fields reuse Flagger's
``analysis`` names so the metric-driven canary fits without an API change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .common import (
    Digest,
    Model,
    Name,
    ObjectReference,
    Placement,
    ResourceRequirements,
    Status,
    cel,
    defaulted,
)
from .kinds import AGE, PHASE, KindInfo, PrinterColumn, condition_column
from .rollout import Rollout, RolloutStatus

URI_PATTERN = r"^(file|s3|gs|https?|pvc)://\S+$"


class ModelSource(Model):
    """The model to serve: exactly one of uri, trainingJobRef, tuningSweepRef."""

    model_config = cel(
        (
            "[has(self.uri), has(self.trainingJobRef), has(self.tuningSweepRef)]"
            ".filter(x, x).size() == 1",
            "set exactly one of spec.model.uri, spec.model.trainingJobRef, "
            "spec.model.tuningSweepRef",
        ),
        (
            "has(self.uri) == has(self.digest)",
            "spec.model.digest is required with spec.model.uri (and only with it)",
        ),
    )

    uri: str | None = Field(
        default=None,
        max_length=2048,
        pattern=URI_PATTERN,
        description="Where the ONNX model lives: s3://, gs://, https://, file:// or pvc://.",
    )
    digest: Digest | None = Field(
        default=None, description="sha256 of the model file; the server refuses a mismatch."
    )
    training_job_ref: ObjectReference | None = Field(
        default=None, description="Serve the model exported by this TrainingJob."
    )
    tuning_sweep_ref: ObjectReference | None = Field(
        default=None, description="Serve the model of this TuningSweep's best trial."
    )


class Batching(Model):
    """Adaptive batching in the model server."""

    enabled: bool = Field(default=False, description="Merge concurrent requests into one call.")
    max_batch_size: int = Field(default=32, ge=1, le=4096, description="Largest merged batch.")
    window_ms: int = Field(
        default=5, ge=1, le=1000, description="How long to wait for a batch (ms)."
    )


# Variables the operator sets on the model server: the model and its digest (the server refuses a
# file whose digest differs), its identity, port and lifecycle. ``server.env`` may not set them,
# or the digest check could be bypassed while status still reports the spec's digest.
OPERATOR_ENV = (
    "SLIPWAY_MODEL_URI",
    "SLIPWAY_MODEL_SHA256",
    "SLIPWAY_ALLOW_UNVERIFIED_MODEL",
    "SLIPWAY_MODEL_NAME",
    "SLIPWAY_MODEL_VERSION",
    "SLIPWAY_PORT",
    "PREDICTIVE_UNIT_HTTP_PORT",
    "SLIPWAY_SHUTDOWN_DELAY_S",
    "SLIPWAY_DRAIN_TIMEOUT_S",
    "SLIPWAY_BATCHING",
    "SLIPWAY_MAX_BATCH_SIZE",
    "SLIPWAY_BATCH_WINDOW_MS",
)
_RESERVED = "[" + ", ".join(f"'{name}'" for name in OPERATOR_ENV) + "]"


class Server(Model):
    """The inference server: Slipway's model-server image, a Seldon custom server speaking V2."""

    model_config = cel(
        (
            f"!has(self.env) || self.env.all(k, !(k in {_RESERVED}))",
            "spec.server.env may not set the variables the operator owns ("
            + ", ".join(OPERATOR_ENV)
            + "); use spec.model and spec.server.batching instead",
        ),
    )

    image: str = Field(
        default="ghcr.io/slipway-dev/model-server:0.1.0",
        min_length=1,
        description="Model server image.",
    )
    protocol: Literal["v2"] = Field(
        default="v2", description="Inference protocol; only the Open Inference Protocol (v2)."
    )
    batching: Batching | None = Field(default=None, description="Adaptive batching settings.")
    env: dict[str, str] | None = Field(
        default=None,
        description="Extra environment variables for the server container (not the ones the "
        "operator sets; no secrets: use envSecretRefName).",
        json_schema_extra={"maxProperties": 128},
    )
    env_secret_ref_name: Name | None = Field(
        default=None,
        description="Secret whose keys become the server's environment (as Seldon's "
        "envSecretRefName): object-storage credentials, e.g. AWS_ACCESS_KEY_ID.",
    )

    @field_validator("env")
    @classmethod
    def _no_operator_variables(cls, env: dict[str, str] | None) -> dict[str, str] | None:
        owned = sorted(set(env or {}) & set(OPERATOR_ENV))
        if owned:
            raise ValueError(f"may not set {', '.join(owned)}: the operator owns them")
        return env


class ModelDeploymentSpec(Model):
    """Desired state of a ModelDeployment."""

    model_config = cel(
        (
            "self.minReplicas <= self.maxReplicas",
            "spec.minReplicas must be <= spec.maxReplicas",
        ),
        (
            "self.rollout.strategy == 'Static' || has(self.rollout.analysis)",
            "spec.rollout.analysis is required unless strategy is Static",
        ),
    )

    model: ModelSource = Field(description="The model to serve.")
    server: Server = defaulted(Server, "Inference server settings.")
    min_replicas: int = Field(default=1, ge=0, le=1000, description="Fewest replicas per version.")
    max_replicas: int = Field(default=1, ge=1, le=1000, description="Most replicas per version.")
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory per replica."
    )
    placement: Placement = defaulted(Placement, "GPU node pool and GPUs.")
    rollout: Rollout = defaulted(Rollout, "Rollout policy.")


class VersionStatus(Model):
    """One live model version."""

    version: str = Field(description="Version id, derived from the model digest.")
    model_uri: str = Field(description="URI served by this version.")
    model_digest: str = Field(description="Digest served by this version.")
    weight: int = Field(description="Percent of traffic this version receives.")
    seldon_deployment: str = Field(description="Name of its SeldonDeployment.")
    ready: bool = Field(default=False, description="Whether its SeldonDeployment is Available.")
    lineage: dict[str, str] | None = Field(
        default=None,
        description="Where this version's model came from: dataset, datasetVersion, "
        "datasetDigest, trainingJob, tuningSweep, trial, run (those known).",
        json_schema_extra={"maxProperties": 16},
    )


class PreviousVersion(VersionStatus):
    """The stable version before the last promotion, kept with no traffic for keepPrevious."""

    keep_until: str = Field(
        description="When it is deleted (RFC 3339).", json_schema_extra={"format": "date-time"}
    )


class ModelDeploymentStatus(Status):
    """Observed state of a ModelDeployment."""

    stable: VersionStatus | None = Field(default=None, description="Version with the main traffic.")
    candidate: VersionStatus | None = Field(
        default=None, description="New version being rolled out, if any."
    )
    previous: PreviousVersion | None = Field(
        default=None,
        description="The version promoted away from, kept with no traffic for keepPrevious.",
    )
    rollout: RolloutStatus | None = Field(
        default=None, description="Progress of the last Canary, ABTest or Shadow rollout."
    )
    url: str | None = Field(default=None, description="In-mesh URL of the inference endpoint.")


INFO = KindInfo(
    kind="ModelDeployment",
    plural="modeldeployments",
    short_names=("md",),
    description="ModelDeployment serves a model through Seldon behind an Istio traffic split, "
    "with static, canary, shadow and A/B rollouts.",
    columns=(
        condition_column("Ready"),
        PHASE,
        PrinterColumn("Stable", ".status.stable.version", description="Stable version."),
        PrinterColumn("Candidate", ".status.candidate.version", description="Candidate version."),
        PrinterColumn(
            "Weight", ".status.candidate.weight", type="integer", description="Candidate weight."
        ),
        PrinterColumn("Rollout", ".status.rollout.phase", description="Rollout phase."),
        PrinterColumn(
            "Checks",
            ".status.rollout.message",
            description="The last check's outcome.",
            priority=1,
        ),
        AGE,
    ),
)
