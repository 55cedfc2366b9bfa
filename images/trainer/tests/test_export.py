"""ONNX export: dynamic batch, the parity check (and its failure), metadata.json, fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from conftest import run_trainer, trainer_env
from slipway_trainer.data import split
from slipway_trainer.export import ParityError, describe, export_onnx, parity_check
from slipway_trainer.models import build_model
from slipway_trainer.snapshot import load


def _model_and_data(uri: str) -> tuple[torch.nn.Module, torch.Tensor, list[int]]:
    data = split(load(uri).table, "label", 0.2, 0)
    torch.manual_seed(3)
    mean, std = data.feature_stats()
    return (
        build_model("mlp", {"hidden": "16"}, data.input_shape, len(data.classes), mean, std).eval(),
        data.x_val,
        data.input_shape,
    )


def test_parity_passes_for_a_faithful_export_and_fails_for_a_broken_one(
    digits: tuple[str, str],
) -> None:
    model, x_val, shape = _model_and_data(digits[0])
    good = export_onnx(model, shape)
    report = parity_check(model, good, x_val)
    assert report["passed"] and report["samples"] == len(x_val) and report["maxAbsDiff"] <= 1e-4

    broken = onnx.load_from_string(good)
    weights = max(broken.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(weights).copy()
    array += 0.01  # a small, systematic error in one weight matrix
    weights.CopyFrom(numpy_helper.from_array(array, weights.name))
    with pytest.raises(
        ParityError,
        match=r"ONNX parity check failed on \d+ validation rows: max \|onnxruntime - torch\|",
    ):
        parity_check(model, broken.SerializeToString(), x_val)


def test_export_has_a_dynamic_batch_axis(digits: tuple[str, str]) -> None:
    model, x_val, shape = _model_and_data(digits[0])
    data = export_onnx(model, shape)
    signature = describe(data)
    assert signature["inputs"] == [
        {"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}
    ]
    assert signature["outputs"] == [{"name": "logits", "shape": ["batch", 10], "dtype": "float32"}]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for batch in (1, 7, 300):
        (out,) = session.run(None, {"input": x_val[:batch].numpy()})
        assert out.shape == (batch, 10)


def test_cnn_from_environment_writes_model_and_matching_metadata(
    digits: tuple[str, str], tmp_path: Path
) -> None:
    uri, digest = digits
    env = trainer_env(
        SLIPWAY_DATASET_URI=uri,
        SLIPWAY_DATASET_DIGEST=digest,
        SLIPWAY_OUTPUT_URI=f"file://{tmp_path}",
        SLIPWAY_MODEL_TYPE="cnn",
        SLIPWAY_HYPERPARAMETERS='{"channels": [8, 16], "hidden": 32}',
        SLIPWAY_EPOCHS="4",
        SLIPWAY_LEARNING_RATE="0.005",
        SLIPWAY_NUM_THREADS="1",
        SLIPWAY_METRICS_FILE=str(tmp_path / "katib" / "metrics.jsonl"),
    )
    result = run_trainer([], env=env)
    assert result.returncode == 0, result.stderr
    katib = [line for line in result.stdout.splitlines() if line.startswith("epoch=")]
    assert len(katib) == 4 and katib[-1].startswith("epoch=4 loss=")
    lines = (tmp_path / "katib" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert f"val_accuracy={json.loads(lines[-1])['val_accuracy']:.6f}" in katib[-1]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    model_bytes = (tmp_path / "model.onnx").read_bytes()
    assert meta["model"]["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert meta["model"]["inputs"][0]["shape"] == ["batch", 1, 8, 8]
    assert meta["model"]["classes"] == list(range(10))
    assert meta["dataset"]["digest"] == digest
    assert meta["modelType"] == "cnn"
    assert meta["hyperparameters"] == {
        "channels": [8, 16],
        "dropout": 0.0,
        "hidden": 32,
        "kernel_size": 3,
    }
    assert meta["parity"]["passed"] is True
    assert meta["metrics"]["validation"]["accuracy"] > 0.85
    assert set(meta["metrics"]["validation"]["perClass"]["3"]) == {"precision", "recall", "support"}

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    data = split(load(uri).table, "label", 0.2, 0)
    (logits,) = session.run(None, {"input": data.x_val.numpy()})
    accuracy = float((logits.argmax(1) == data.y_val.numpy()).mean())
    assert accuracy == pytest.approx(meta["metrics"]["validation"]["accuracy"], abs=1e-6)

    printed = run_trainer(["--print-fingerprint"], env=env)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["fingerprint"] == meta["fingerprint"]
    other = run_trainer(["--print-fingerprint", "--seed", "1"], env=env)
    assert json.loads(other.stdout)["fingerprint"] != meta["fingerprint"]
