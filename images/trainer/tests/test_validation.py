"""Validation rules produce a readable report, and a failing rule stops ingestion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slipway_trainer.dataset import ingest, parse_rules
from slipway_trainer.sources import load_source, table_from_arrays
from slipway_trainer.validation import Rules, ValidationFailed, validate

DIGITS_RULES = {
    "requiredColumns": {"image": "float32", "label": "int"},
    "minRows": 1000,
    "maxNullFraction": 0.0,
    "allowedLabels": list(range(10)),
    "minClassFraction": 0.05,
    "maxClassRatio": 1.5,
}


def test_digits_pass_every_rule() -> None:
    report = validate(load_source("builtin://digits"), Rules.from_dict(DIGITS_RULES))
    assert report.ok, report.to_text()
    assert [c.rule for c in report.checks] == [
        "minRows",
        "requiredColumns[image]",
        "requiredColumns[label]",
        "maxNullFraction",
        "allowedLabels",
        "minClassFraction",
        "maxClassRatio",
    ]


def test_each_rule_can_fail_with_a_readable_reason() -> None:
    x = np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0], dtype=np.float32)
    table = table_from_arrays({"x": x, "label": np.array([0, 0, 0, 0, 0, 7])})
    rules = Rules.from_dict(
        {
            "requiredColumns": {"x": "int", "y": "float"},
            "minRows": 10,
            "maxNullFraction": 0.1,
            "allowedLabels": [0, 1],
            "minClassFraction": 0.2,
            "maxClassRatio": 2,
        }
    )
    report = validate(table, rules)
    text = report.to_text()
    assert not report.ok
    failed = {c.rule for c in report.checks if not c.passed}
    assert failed == {
        "minRows",
        "requiredColumns[x]",
        "requiredColumns[y]",
        "maxNullFraction",
        "allowedLabels",
        "minClassFraction",
        "maxClassRatio",
    }
    assert "FAIL minRows: 6 rows, need at least 10" in text
    assert "highest null fraction 0.1667 (column 'x')" in text
    assert "unexpected labels ['7']" in text
    assert "FAIL requiredColumns[y]: missing" in text


def test_failing_rule_stops_ingestion_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationFailed, match="FAIL minRows: 150 rows, need at least 1000"
    ) as info:
        ingest("builtin://iris", str(tmp_path), "iris", "v1", Rules(min_rows=1000))
    assert not info.value.report.ok
    assert not (tmp_path / "iris" / "v1").exists()


def test_unknown_rule_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown validation rule 'minRow'; valid: .*minRows"):
        parse_rules('{"minRow": 3}')
