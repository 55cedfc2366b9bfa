"""Both pipelines end to end with kfp.local's subprocess runner on builtin://digits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from slipway_pipelines.pipelines import dataset_ingestion, train_evaluate_export
from slipway_trainer.data import split
from slipway_trainer.snapshot import load


@pytest.fixture(scope="module")
def published(kfp_local: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """Run the ingestion pipeline twice into two stores: ``(uri, digest, second digest)``."""
    digests = []
    for store in ("store-a", "store-b"):
        root = tmp_path_factory.mktemp(store)
        task = dataset_ingestion(
            source_uri="builtin://digits",
            store_uri=str(root),
            name="digits",
            version="v1",
            rules_json=json.dumps(
                {"minRows": 1000, "allowedLabels": list(range(10)), "minClassFraction": 0.05}
            ),
        )
        digests.append((str(root / "digits" / "v1"), task.output))
    return digests[0][0], digests[0][1], digests[1][1]


def test_ingestion_pipeline_publishes_a_content_addressed_snapshot(
    published: tuple[str, str, str],
) -> None:
    uri, digest, again = published
    assert digest.startswith("sha256:") and digest == again
    assert load(uri, digest).table.num_rows == 1797
    assert json.loads((Path(uri) / "validation.json").read_text())["ok"] is True


def test_ingestion_pipeline_stops_on_a_failed_rule(kfp_local: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="validate-dataset"):
        dataset_ingestion(
            source_uri="builtin://digits",
            store_uri=str(tmp_path),
            name="digits",
            version="v1",
            rules_json='{"minRows": 5000}',
        )
    assert not (tmp_path / "digits").exists()


def test_training_pipeline_exports_an_accurate_onnx_model(
    kfp_local: Path, published: tuple[str, str, str], tmp_path: Path
) -> None:
    uri, digest, _ = published
    out = tmp_path / "model"
    task = train_evaluate_export(
        dataset_uri=uri, dataset_digest=digest, output_uri=str(out), epochs=20, min_value=0.9
    )
    artifact = task.output
    meta = json.loads((out / "metadata.json").read_text())
    model_bytes = (out / "model.onnx").read_bytes()
    assert meta["model"]["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert meta["dataset"]["digest"] == digest
    assert meta["fingerprint"] == artifact.metadata["fingerprint"]
    assert (Path(artifact.path) / "model.onnx").read_bytes() == model_bytes

    data = split(
        load(uri, digest).table,
        "label",
        meta["training"]["valFraction"],
        meta["training"]["splitSeed"],
    )
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {meta["model"]["inputs"][0]["name"]: data.x_val.numpy()})
    accuracy = float(np.mean(logits.argmax(axis=1) == data.y_val.numpy()))
    assert accuracy >= 0.90
    assert accuracy == pytest.approx(meta["metrics"]["validation"]["accuracy"], abs=1e-6)
    assert meta["metrics"]["validation"]["samples"] == len(data.y_val) > 300


def test_quality_gate_blocks_export(
    kfp_local: Path, published: tuple[str, str, str], tmp_path: Path
) -> None:
    uri, digest, _ = published
    with pytest.raises(RuntimeError, match="evaluate-model"):
        train_evaluate_export(
            dataset_uri=uri,
            dataset_digest=digest,
            output_uri=str(tmp_path),
            epochs=1,
            learning_rate=0.0001,
            min_value=0.99,
        )
    assert not (tmp_path / "model.onnx").exists()
