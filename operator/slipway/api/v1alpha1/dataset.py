"""Dataset: a data source, validation rules and retention, snapshotted into immutable versions.

Each ingestion is a Kubeflow Pipelines run; its output is a content-addressed version whose digest
is the sha256 of the snapshot's canonical manifest, so the same data always yields the same digest.
TrainingJobs pin a version or a digest from ``status.versions``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Digest, Model, Status, cel, defaulted
from .kinds import AGE, PHASE, KindInfo, PrinterColumn, condition_column

SOURCE_PATTERN = r"^(builtin|file|s3|gs|https?|pvc)://\S+$"


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
        default=None, max_length=10000, description="The only labels allowed."
    )
    min_class_fraction: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Smallest share any label may have (balance)."
    )
    max_class_ratio: float | None = Field(
        default=None, ge=1.0, description="Largest allowed ratio of the biggest to smallest label."
    )


class Retention(Model):
    """How many old versions to keep recorded and stored."""

    keep_versions: int = Field(default=10, ge=1, le=1000, description="Versions to keep.")


class DatasetSpec(Model):
    """Desired state of a Dataset."""

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
        pattern=SOURCE_PATTERN,
        description="Where snapshots are written; each version is a folder named by its digest.",
    )
    validation: Validation = defaulted(Validation, "Validation rules.")
    retention: Retention = defaulted(Retention, "Retention policy.")


class DatasetVersion(Model):
    """One immutable snapshot."""

    version: str = Field(description="Version name (v1, v2, ...).")
    digest: Digest = Field(description="sha256 of the snapshot manifest.")
    rows: int = Field(description="Rows in the snapshot.")
    uri: str = Field(description="Where the snapshot is stored.")
    created: str = Field(description="When it was created (RFC 3339).")


class DatasetStatus(Status):
    """Observed state of a Dataset."""

    latest_version: str | None = Field(default=None, description="Newest valid version.")
    latest_digest: str | None = Field(default=None, description="Digest of the newest version.")
    versions: list[DatasetVersion] | None = Field(default=None, description="Kept versions.")
    pipeline_run: str | None = Field(default=None, description="Current ingestion run.")


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
        PrinterColumn("Source", ".spec.source", description="Data source.", priority=1),
        AGE,
    ),
)

__all__ = ["INFO", "DatasetSpec", "DatasetStatus"]
