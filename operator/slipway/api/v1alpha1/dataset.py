"""Dataset: a data source, validation rules and retention, snapshotted into immutable versions.

Each ingestion is a Kubeflow Pipelines run (``slipway-dataset-ingestion``); its output is a
content-addressed snapshot whose digest is the sha256 of its canonical manifest, so the same data
always yields the same digest, and a digest already recorded is never recorded twice. TrainingJobs
pin a version or a digest from ``status.versions``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Digest, Model, Status, cel, defaulted
from .kinds import AGE, PHASE, KindInfo, PrinterColumn, condition_column

SOURCE_PATTERN = r"^(builtin|file|s3|gs|https?|pvc)://\S+$"
STORAGE_PATTERN = r"^(file|s3|gs|pvc)://\S+$"


class ColumnRule(Model):
    """A column that must be present, with its type."""

    name: str = Field(min_length=1, max_length=256, description="Column name.")
    type: Literal["int", "float", "string", "bool"] = Field(description="Expected column type.")


class Validation(Model):
    """Rules a snapshot must pass; a failing rule stops ingestion with a report."""

    model_config = cel(
        (
            "!has(self.allowedLabels) || has(self.labelColumn)",
            "spec.validation.labelColumn is required with spec.validation.allowedLabels",
        ),
    )

    required_columns: list[ColumnRule] | None = Field(
        default=None, max_length=1024, description="Columns that must exist, with their types."
    )
    min_rows: int = Field(default=1, ge=1, description="Fewest rows accepted.")
    max_null_fraction: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Largest fraction of nulls in any column."
    )
    label_column: str | None = Field(default=None, description="Column holding the label.")
    allowed_labels: list[str] | None = Field(
        default=None,
        max_length=10000,
        description="The only labels allowed. A label written as a whole number ('3') matches an "
        "integer label column; others match string labels.",
    )
    min_class_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Smallest share any label may have (balance); 0: not checked.",
    )
    max_class_ratio: float | None = Field(
        default=None, ge=1.0, description="Largest allowed ratio of the biggest to smallest label."
    )


class Retention(Model):
    """How many versions ``status.versions`` keeps, and whether forgotten data is deleted."""

    keep_versions: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Versions kept in status.versions. Older ones are forgotten, except a version "
        "that a TrainingJob in this namespace references, which is always kept.",
    )
    delete_data: bool = Field(
        default=False,
        description="Also delete the stored snapshot of a forgotten version. Default false: only "
        "the status record forgets it and the data stays in storageUri. The operator deletes only "
        "where it can reach the store itself (the local providers' store, file:// it mounts).",
    )


class DatasetSpec(Model):
    """Desired state of a Dataset. A change of source, format, storage or validation ingests
    again; a change of retention only applies the new policy."""

    source: str = Field(
        max_length=2048,
        pattern=SOURCE_PATTERN,
        description="Where the data comes from: builtin://digits, builtin://iris, file://, "
        "pvc://<claim>/<path>, s3://, gs:// or https://.",
    )
    format: Literal["auto", "parquet", "csv", "npz"] = Field(
        default="auto", description="Format of the source files."
    )
    storage_uri: str = Field(
        default="pvc://slipway-datasets",
        max_length=2048,
        pattern=STORAGE_PATTERN,
        description="Where snapshots are written: each ingestion run writes "
        "<storageUri>/<namespace>/<name>/<run>/ (manifest.json, data/, validation.json).",
    )
    validation: Validation = defaulted(Validation, "Validation rules.")
    retention: Retention = defaulted(Retention, "Retention policy.")


class ValidationSummary(Model):
    """What the validation of a snapshot found (the full report is validation.json beside it)."""

    passed: bool = Field(description="Whether every rule passed.")
    checks: int = Field(description="Rules checked.")
    failed: list[str] | None = Field(default=None, description="Rules that failed, with detail.")


class DatasetVersion(Model):
    """One immutable snapshot."""

    version: str = Field(description="Version name (v1, v2, ...).")
    digest: Digest = Field(description="sha256 of the snapshot manifest.")
    rows: int = Field(description="Rows in the snapshot.")
    uri: str = Field(description="Where the snapshot is stored.")
    created: str = Field(description="When it was created (RFC 3339).")
    run: str | None = Field(default=None, description="The ingestion run that produced it.")
    validation: ValidationSummary | None = Field(default=None, description="Validation summary.")


class IngestionRun(Model):
    """The latest ingestion run: one per change of the data-defining spec."""

    name: str = Field(description="Deterministic run name (object uid + generation).")
    id: str | None = Field(default=None, description="Run id in the pipelines system.")
    provider: str = Field(description="Pipelines provider: kfp, local or none.")
    generation: int = Field(description="The .metadata.generation the run ingests.")
    inputs: str = Field(description="Hash of the spec fields the run ingests.")
    uri: str = Field(description="Where the run writes its snapshot.")
    state: str = Field(description="PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, ...")
    message: str | None = Field(default=None, description="Why the run failed, if it did.")
    created: str | None = Field(default=None, description="When the run started (RFC 3339).")
    finished: str | None = Field(default=None, description="When the run ended (RFC 3339).")
    outcome: str | None = Field(
        default=None, description="NewVersion, Unchanged (same digest as a kept version) or Failed."
    )


class DatasetStatus(Status):
    """Observed state of a Dataset."""

    latest_version: str | None = Field(default=None, description="Newest valid version.")
    latest_digest: str | None = Field(default=None, description="Digest of the newest version.")
    short_digest: str | None = Field(
        default=None, description="The newest digest's first 12 hex digits (kubectl get)."
    )
    latest_rows: int | None = Field(default=None, description="Rows of the newest version.")
    versions: list[DatasetVersion] | None = Field(
        default=None, description="Kept versions, oldest first."
    )
    ingestion: IngestionRun | None = Field(default=None, description="The latest ingestion run.")


INFO = KindInfo(
    kind="Dataset",
    plural="datasets",
    short_names=("ds",),
    description="Dataset ingests, validates and snapshots data into immutable, content-addressed "
    "versions.",
    columns=(
        condition_column("Ready"),
        PHASE,
        PrinterColumn("Version", ".status.latestVersion", description="Newest version."),
        PrinterColumn("Digest", ".status.shortDigest", description="Newest digest (prefix)."),
        PrinterColumn("Rows", ".status.latestRows", type="integer", description="Rows."),
        PrinterColumn("Source", ".spec.source", description="Data source.", priority=1),
        AGE,
    ),
)

__all__ = ["INFO", "DatasetSpec", "DatasetStatus"]
