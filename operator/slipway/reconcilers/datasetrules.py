"""A Dataset's validation block as the trainer's rules, and its report as a status summary.

The trainer (``slipway_trainer.validation``) takes the rules as a JSON object with the CR's
camelCase names, except that required columns are a map (name -> type) and labels are compared
with the label column's values as they are. The CR writes labels as strings, so a label that is a
whole number ('3') is sent as the integer 3, which matches an integer label column (the builtin
datasets' case); any other label stays a string. Rules left at their "not checked" value are not
sent, so the trainer does not insist on a label column nobody asked for.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slipway.api.v1alpha1.dataset import Validation

_INTEGER = re.compile(r"^-?\d+$")


def _label(value: str) -> int | str:
    return int(value) if _INTEGER.match(value) else value


def rules(validation: Validation) -> dict[str, Any]:
    """The trainer's rules object for ``validation``."""
    out: dict[str, Any] = {
        "minRows": validation.min_rows,
        "maxNullFraction": validation.max_null_fraction,
    }
    if validation.required_columns:
        out["requiredColumns"] = {c.name: c.type for c in validation.required_columns}
    if validation.label_column:
        out["labelColumn"] = validation.label_column
    if validation.allowed_labels is not None:
        out["allowedLabels"] = [_label(v) for v in validation.allowed_labels]
    if validation.min_class_fraction > 0:
        out["minClassFraction"] = validation.min_class_fraction
    if validation.max_class_ratio is not None:
        out["maxClassRatio"] = validation.max_class_ratio
    return out


def rules_json(validation: Validation) -> str:
    return json.dumps(rules(validation), sort_keys=True, separators=(",", ":"))


def summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A status summary of a validation report: ``{ok, rows, checks: [{rule, passed, detail}]}``."""
    if not report:
        return None
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    failed = [f"{c.get('rule')}: {c.get('detail')}" for c in checks if not c.get("passed")]
    out: dict[str, Any] = {"passed": bool(report.get("ok")), "checks": len(checks)}
    if failed:
        out["failed"] = failed
    return out
