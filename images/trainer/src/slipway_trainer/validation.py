"""Validation rules for dataset ingestion and the readable report they produce.

Rules come as a JSON object (the Dataset CR's ``validation`` block); unknown keys are rejected::

    {"requiredColumns": {"image": "float32", "label": "int"},  # or int/float/numeric/string/any
     "minRows": 100,
     "maxNullFraction": 0.0,        # per column; NaN in float columns counts as null
     "labelColumn": "label",
     "allowedLabels": [0, 1, 2],    # the label set
     "minClassFraction": 0.05,      # balance: every allowed (or seen) class has this share of rows
     "maxClassRatio": 3.0}          # balance: largest class count / smallest class count

Every rule yields a check line; a snapshot is written only when all checks pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa

from .sources import column_dtype

FAMILIES = {
    "any": lambda d: True,
    "int": lambda d: d.startswith(("int", "uint")),
    "float": lambda d: d.startswith("float"),
    "numeric": lambda d: d.startswith(("int", "uint", "float")),
    "string": lambda d: d == "string",
}


@dataclass
class Rules:
    required_columns: dict[str, str] = field(default_factory=dict)
    min_rows: int = 1
    max_null_fraction: float = 0.0
    label_column: str = "label"
    allowed_labels: list[Any] | None = None
    min_class_fraction: float | None = None
    max_class_ratio: float | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Rules:
        """Build rules from camelCase (or snake_case) keys; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        camel = {_camel(n): n for n in names}
        kwargs = {}
        for key, value in raw.items():
            name = camel.get(key, key)
            if name not in names:
                raise ValueError(
                    f"unknown validation rule {key!r}; valid: {', '.join(sorted(camel))}"
                )
            kwargs[name] = value
        return cls(**kwargs)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@dataclass
class Check:
    rule: str
    passed: bool
    detail: str


@dataclass
class Report:
    rows: int
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "checks": [asdict(c) for c in self.checks]}

    def to_text(self) -> str:
        lines = [f"validation {'passed' if self.ok else 'FAILED'} ({self.rows} rows)"]
        lines += [f"  {'PASS' if c.passed else 'FAIL'} {c.rule}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


class ValidationFailed(ValueError):
    """At least one rule failed; ``report`` holds every check."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.to_text())
        self.report = report


def _null_rows(column: pa.ChunkedArray) -> int:
    nulls = column.null_count
    col_type = column.type
    if pa.types.is_fixed_size_list(col_type) and pa.types.is_floating(col_type.value_type):
        flat = np.asarray(
            column.combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype=np.float64
        )
        width = col_type.list_size
        valid = column.combine_chunks().is_valid().to_numpy(zero_copy_only=False)
        nan_rows = np.isnan(flat.reshape(-1, width)).any(axis=1) if width else np.zeros(0, bool)
        nulls += int((nan_rows & valid[: len(nan_rows)]).sum())
    elif pa.types.is_floating(col_type):
        values = column.to_numpy(zero_copy_only=False)
        nulls = int(np.isnan(values.astype(np.float64)).sum())
    return int(nulls)


def validate(table: pa.Table, rules: Rules) -> Report:
    """Run every rule against the table and return the report (never raises on a failed rule)."""
    rows = table.num_rows
    checks = [
        Check("minRows", rows >= rules.min_rows, f"{rows} rows, need at least {rules.min_rows}")
    ]
    dtypes = {f.name: column_dtype(f) for f in table.schema}
    for name, wanted in sorted(rules.required_columns.items()):
        if name not in dtypes:
            checks.append(
                Check(f"requiredColumns[{name}]", False, f"missing; columns are {sorted(dtypes)}")
            )
            continue
        found = dtypes[name]
        ok = FAMILIES[wanted](found) if wanted in FAMILIES else found == wanted
        checks.append(Check(f"requiredColumns[{name}]", ok, f"dtype {found}, want {wanted}"))
    worst_name, worst = "", 0.0
    for name in table.column_names:
        fraction = _null_rows(table.column(name)) / rows if rows else 0.0
        if fraction >= worst:
            worst_name, worst = name, fraction
    checks.append(
        Check(
            "maxNullFraction",
            worst <= rules.max_null_fraction,
            f"highest null fraction {worst:.4f} (column {worst_name!r}), "
            f"allowed {rules.max_null_fraction}",
        )
    )
    if (
        rules.allowed_labels is not None
        or rules.min_class_fraction is not None
        or rules.max_class_ratio is not None
    ):
        checks += _label_checks(table, rules)
    return Report(rows=rows, checks=checks)


def _label_checks(table: pa.Table, rules: Rules) -> list[Check]:
    if rules.label_column not in table.column_names:
        return [Check("labelColumn", False, f"label column {rules.label_column!r} is missing")]
    labels = table.column(rules.label_column).to_pylist()
    counts = Counter(labels)
    checks = []
    classes = list(counts)
    if rules.allowed_labels is not None:
        allowed = set(rules.allowed_labels)
        unexpected = sorted({str(v) for v in counts if v not in allowed})
        checks.append(
            Check(
                "allowedLabels",
                not unexpected,
                f"unexpected labels {unexpected}" if unexpected else "all labels allowed",
            )
        )
        classes = list(rules.allowed_labels)
    total = max(len(labels), 1)
    shares = {c: counts.get(c, 0) / total for c in classes}
    if rules.min_class_fraction is not None:
        rare = min(shares, key=lambda c: shares[c]) if shares else None
        share = shares.get(rare, 0.0) if rare is not None else 0.0
        checks.append(
            Check(
                "minClassFraction",
                share >= rules.min_class_fraction,
                f"rarest class {rare!r} has share {share:.4f}, need {rules.min_class_fraction}",
            )
        )
    if rules.max_class_ratio is not None:
        sizes = [counts.get(c, 0) for c in classes] or [0]
        ratio = max(sizes) / min(sizes) if min(sizes) else float("inf")
        checks.append(
            Check(
                "maxClassRatio",
                ratio <= rules.max_class_ratio,
                f"largest/smallest class {ratio:.3f}, allowed {rules.max_class_ratio}",
            )
        )
    return checks
