"""Types shared by every Slipway kind: the model base, conditions, placement, references, lineage.

Field names follow Kubernetes conventions (camelCase on the wire through aliases) and every field
carries a description, because the descriptions become the CRD's and so ``kubectl explain``'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "slipway.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DIGEST = r"^sha256:[a-f0-9]{64}$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
Digest = Annotated[str, Field(pattern=DIGEST, description="Content digest, 'sha256:<64 hex>'.")]
Quantity = Annotated[str, Field(pattern=QUANTITY)]


class Model(BaseModel):
    """Base of every API type: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_api(self) -> dict[str, object]:
        """The object as it appears on the wire: aliases, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Condition(Model):
    """A Kubernetes-style condition (the shape of metav1.Condition)."""

    type: str = Field(
        description="Condition type: Ready, Progressing, Degraded or a kind-specific one."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word saying why the condition has this status.")
    message: str = Field(
        default="", description="Human-readable detail, including how to fix a problem."
    )
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was computed from."
    )


class ObjectReference(Model):
    """A reference to another Slipway object in the same namespace."""

    name: Name = Field(description="Name of the referenced object (same namespace).")


class Placement(Model):
    """Where pods run: a GPU node pool defined in the operator's configuration, and GPUs per pod."""

    node_pool: Name | None = Field(
        default=None,
        description="Name of a node pool from the operator configuration (Helm value nodePools); "
        "it sets the nodeSelector, tolerations and GPU resource name. Empty: no pool, CPU only.",
    )
    gpus: int = Field(
        default=0, ge=0, le=16, description="GPUs per pod, requested as the pool's GPU resource."
    )


class ResourceRequirements(Model):
    """CPU and memory for each pod, as in a container's resources (GPUs come from placement)."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, e.g. {cpu: 500m, memory: 1Gi}."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources, e.g. {cpu: '2', memory: 4Gi}."
    )


class Lineage(Model):
    """The chain from data to live model; every kind fills in the links it knows."""

    dataset: str | None = Field(default=None, description="Dataset name.")
    dataset_version: str | None = Field(default=None, description="Dataset version used.")
    dataset_digest: str | None = Field(default=None, description="Digest of that dataset version.")
    fingerprint: str | None = Field(default=None, description="Training inputs' fingerprint.")
    run: str | None = Field(default=None, description="The run that trained the model.")
    training_job: str | None = Field(
        default=None, description="TrainingJob that produced the model."
    )
    tuning_sweep: str | None = Field(default=None, description="TuningSweep the model came from.")
    trial: str | None = Field(default=None, description="Katib trial that produced the model.")
    model_uri: str | None = Field(default=None, description="URI of the model artifact.")
    model_digest: str | None = Field(default=None, description="Digest of the model artifact.")
    live_version: str | None = Field(
        default=None, description="Version serving the stable traffic."
    )


class Status(Model):
    """Fields every kind's status has."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the operator last reconciled."
    )
    phase: str | None = Field(default=None, description="Short summary for printer columns.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Degraded and kind-specific conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    lineage: Lineage | None = Field(default=None, description="Data-to-model lineage.")


def cel(*rules: tuple[str, str]) -> ConfigDict:
    """Model config carrying CEL rules (``x-kubernetes-validations``), each ``(rule, message)``.

    The API server evaluates them at admission, so a cross-field mistake is rejected with the
    message, which names the field and the fix.
    """
    validations: list[JsonValue] = [{"rule": rule, "message": message} for rule, message in rules]
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"x-kubernetes-validations": validations},
    )


def defaulted(model: type[Model], description: str) -> Any:
    """A nested object that may be left out: pydantic builds it from its defaults, and the CRD
    declares ``default: {}`` so the API server fills in the same defaults for CEL and kubectl."""
    empty: JsonDict = {"default": {}}
    return Field(default_factory=model, description=description, json_schema_extra=empty)
