"""DDP on CPU: two gloo processes under torchrun reach the metrics of one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_trainer, trainer_env


def test_two_processes_match_one(digits: tuple[str, str], tmp_path: Path) -> None:
    uri, digest = digits
    args = [
        "--dataset-uri",
        uri,
        "--dataset-digest",
        digest,
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--num-threads",
        "1",
    ]
    single = run_trainer([*args, "--output-uri", str(tmp_path / "one")])
    assert single.returncode == 0, single.stderr
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    launch += ["-m", "slipway_trainer", *args, "--output-uri", str(tmp_path / "two")]
    ddp = subprocess.run(
        launch, env=trainer_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr

    one = json.loads((tmp_path / "one" / "metadata.json").read_text())
    two = json.loads((tmp_path / "two" / "metadata.json").read_text())
    assert one["training"]["worldSize"] == 1 and two["training"]["worldSize"] == 2
    assert two["fingerprint"] == one["fingerprint"]
    hist_one = json.loads((tmp_path / "one" / "metrics.json").read_text())["epochs"]
    hist_two = json.loads((tmp_path / "two" / "metrics.json").read_text())["epochs"]
    assert len(hist_one) == len(hist_two) == 3
    for a, b in zip(hist_one, hist_two, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert b[key] == pytest.approx(a[key], abs=1e-3), (key, a, b)
    assert hist_one[0]["loss"] != hist_one[-1]["loss"]
    val_one, val_two = one["metrics"]["validation"], two["metrics"]["validation"]
    assert val_two["accuracy"] == pytest.approx(val_one["accuracy"], abs=1.5 / val_one["samples"])
    assert val_two["loss"] == pytest.approx(val_one["loss"], abs=1e-3)
