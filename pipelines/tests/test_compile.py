"""Both pipelines compile with the real kfp compiler, match the committed IR, place GPUs."""

from __future__ import annotations

from pathlib import Path

import yaml

from slipway_pipelines.compile import DEFAULT_DIR, compile_all


def test_compile_matches_committed_ir(tmp_path: Path) -> None:
    paths = compile_all(str(tmp_path))
    assert [Path(p).name for p in paths] == [
        "slipway-dataset-ingestion.yaml",
        "slipway-train-evaluate-export.yaml",
    ]
    for path in paths:
        committed = Path(DEFAULT_DIR) / Path(path).name
        assert committed.read_text() == Path(path).read_text(), (
            f"{committed} is stale: run pipelines/compile.sh and commit the result"
        )


def test_ir_structure_and_gpu_placement(tmp_path: Path) -> None:
    ingestion_path, training_path = compile_all(str(tmp_path))
    ingestion = yaml.safe_load(Path(ingestion_path).read_text())
    assert set(ingestion["root"]["dag"]["tasks"]) == {
        "ingest-dataset",
        "validate-dataset",
        "publish-snapshot",
    }
    spec, platform = list(yaml.safe_load_all(Path(training_path).read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"train-model", "evaluate-model", "export-model"}
    assert tasks["export-model"]["dependentTasks"] == ["evaluate-model", "train-model"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {
        "min_value",
        "gate_metric",
        "node_selector",
        "tolerations",
        "accelerator_type",
        "gpus",
    } <= set(params)
    container = spec["deploymentSpec"]["executors"]["exec-train-model"]["container"]
    assert container["image"].endswith("slipway-trainer:0.1.0")
    accelerator = container["resources"]["accelerator"]
    assert "pipelinechannel--gpus" in accelerator["resourceCount"]
    assert "pipelinechannel--accelerator_type" in accelerator["resourceType"]
    executor = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-train-model"
    ]
    assert (
        executor["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"] == "node_selector"
    )
    assert executor["tolerations"][0]["tolerationJson"]["componentInputParameter"] == "tolerations"
