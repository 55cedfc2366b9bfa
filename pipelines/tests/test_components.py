"""Unit tests of the component functions, called directly with real artifacts in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import Artifact, Dataset, Markdown, Metrics, Model

from slipway_pipelines.components import (
    evaluate_model,
    export_model,
    ingest_dataset,
    publish_snapshot,
    train_model,
    validate_dataset,
)
from slipway_trainer.snapshot import SnapshotExistsError, load
from slipway_trainer.validation import ValidationFailed


def _artifact(cls: type, tmp: Path, name: str):
    return cls(uri=str(tmp / name), name=name, metadata={})


def _ingested(tmp: Path, source: str = "builtin://iris") -> Dataset:
    dataset = _artifact(Dataset, tmp, "dataset")
    digest = ingest_dataset.python_func(source_uri=source, dataset=dataset)
    assert dataset.metadata["digest"] == digest
    return dataset


def test_ingest_validate_publish(tmp_path: Path) -> None:
    dataset = _ingested(tmp_path)
    assert dataset.metadata["rows"] == 150
    report = _artifact(Markdown, tmp_path, "report")
    assert validate_dataset.python_func(
        dataset=dataset, rules_json='{"minRows": 100, "allowedLabels": [0, 1, 2]}', report=report
    )
    assert "PASS allowedLabels" in Path(report.path).read_text()
    args = {
        "dataset": dataset,
        "report": report,
        "store_uri": str(tmp_path / "store"),
        "name": "iris",
        "version": "v1",
    }
    uri, digest = publish_snapshot.python_func(**args, allow_identical=False)
    assert digest == dataset.metadata["digest"] == load(uri, digest).digest
    with pytest.raises(SnapshotExistsError):
        publish_snapshot.python_func(**args, allow_identical=False)
    assert publish_snapshot.python_func(**args, allow_identical=True) == (uri, digest)
    assert json.loads((Path(uri) / "validation.json").read_text())["ok"] is True
    failed = _artifact(Markdown, tmp_path, "failed")
    with pytest.raises(ValidationFailed):
        validate_dataset.python_func(dataset=dataset, rules_json='{"minRows": 500}', report=failed)
    with pytest.raises(RuntimeError, match="did not pass validation"):
        publish_snapshot.python_func(
            **{**args, "version": "v2", "report": failed}, allow_identical=False
        )


def test_validate_fails_with_the_report(tmp_path: Path) -> None:
    dataset = _ingested(tmp_path)
    report = _artifact(Markdown, tmp_path, "report")
    with pytest.raises(ValidationFailed, match="FAIL minRows: 150 rows, need at least 500"):
        validate_dataset.python_func(dataset=dataset, rules_json='{"minRows": 500}', report=report)
    assert "validation FAILED" in Path(report.path).read_text()


def test_train_evaluate_gate_and_export(tmp_path: Path) -> None:
    dataset = _ingested(tmp_path)
    model = _artifact(Model, tmp_path, "model")
    train_model.python_func(
        dataset_uri=dataset.path,
        dataset_digest=dataset.metadata["digest"],
        model_type="mlp",
        hyperparameters_json='{"hidden": [16]}',
        epochs=30,
        batch_size=16,
        learning_rate=0.01,
        optimizer="adam",
        seed=0,
        checkpoint_uri="",
        model=model,
        metrics=_artifact(Metrics, tmp_path, "metrics"),
    )
    assert {"model.pt", "train.json"} <= {p.name for p in Path(model.path).iterdir()}
    evaluation = _artifact(Metrics, tmp_path, "evaluation")
    report = _artifact(Artifact, tmp_path, "report")
    accuracy = evaluate_model.python_func(
        model=model, gate_metric="accuracy", min_value=0.8, evaluation=evaluation, report=report
    )
    assert accuracy >= 0.8 and evaluation.metadata["accuracy"] == accuracy
    per_class = json.loads(Path(report.path).read_text())["perClass"]
    assert set(per_class) == {"0", "1", "2"}
    assert all(0.0 <= c["precision"] <= 1.0 and c["support"] == 10 for c in per_class.values())
    with pytest.raises(
        RuntimeError,
        match=r"quality gate failed: held-out accuracy 0\.\d+ is below the minimum 1\.01",
    ):
        evaluate_model.python_func(
            model=model,
            gate_metric="accuracy",
            min_value=1.01,
            evaluation=evaluation,
            report=report,
        )
    with pytest.raises(
        ValueError, match="unknown gate metric 'f1'; valid: accuracy, loss, macroPrecision"
    ):
        evaluate_model.python_func(
            model=model, gate_metric="f1", min_value=0.5, evaluation=evaluation, report=report
        )

    onnx_model = _artifact(Model, tmp_path, "onnx")
    fingerprint = export_model.python_func(
        model=model, gate_value=accuracy, output_uri=str(tmp_path / "out"), onnx_model=onnx_model
    )
    for folder in (Path(onnx_model.path), tmp_path / "out"):
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["fingerprint"] == fingerprint == onnx_model.metadata["fingerprint"]
        assert meta["metrics"]["validation"]["accuracy"] == pytest.approx(accuracy)
        assert meta["model"]["inputs"][0]["shape"] == ["batch", 4]
        assert (folder / "model.onnx").stat().st_size > 0
