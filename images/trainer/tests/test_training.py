"""Training: overfitting, checkpoint/resume after a kill, bad inputs that must stop the job."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import torch
from torch.nn import functional as F

from conftest import run_trainer, trainer_env
from slipway_trainer.data import split
from slipway_trainer.models import build_model
from slipway_trainer.snapshot import load

COMMON = [
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--checkpoint-every",
    "7",
    "--num-threads",
    "1",
    "--seed",
    "11",
]


def test_tiny_model_overfits_one_batch(digits: tuple[str, str]) -> None:
    data = split(load(digits[0]).table, "label", 0.2, 0)
    xb, yb = data.x_train[:32], data.y_train[:32]
    torch.manual_seed(0)
    mean, std = data.feature_stats()
    model = build_model("mlp", {"hidden": "32"}, data.input_shape, len(data.classes), mean, std)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = F.cross_entropy(model(xb), yb).item()
    for _ in range(150):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    assert first > 1.0
    assert loss.item() < 0.01
    assert bool((model(xb).argmax(1) == yb).all())


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)


def _history(out: Path) -> list[dict[str, float]]:
    return json.loads((out / "metrics.json").read_text())["epochs"]


def test_killed_run_resumes_to_the_same_weights(digits: tuple[str, str], tmp_path: Path) -> None:
    uri, digest = digits
    base = ["--dataset-uri", uri, "--dataset-digest", digest, *COMMON]
    straight = run_trainer([*base, "--output-uri", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr

    for case, corrupt in (("resumed", False), ("corrupt", True)):
        out = tmp_path / case
        killed = run_trainer(
            [*base, "--output-uri", str(out)], env=trainer_env(SLIPWAY_TEST_KILL_AT_STEP="30")
        )
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        assert not (out / "model.onnx").exists()
        ckpts = sorted((out / "checkpoints").glob("ckpt-*.pt"))
        assert [p.name for p in ckpts] == [
            "ckpt-000000021.pt",
            "ckpt-000000023.pt",
            "ckpt-000000028.pt",
        ]
        if corrupt:
            raw = bytearray(ckpts[-1].read_bytes())
            raw[-100] ^= 0xFF
            ckpts[-1].write_bytes(bytes(raw))
        restarted = run_trainer([*base, "--output-uri", str(out)])
        assert restarted.returncode == 0, restarted.stderr
        log = restarted.stdout + restarted.stderr
        if corrupt:
            assert "skipping corrupt checkpoint" in log and "ckpt-000000028.pt" in log
            assert "(step 23)" in log
        else:
            assert "(step 28)" in log
        want, got = _weights(tmp_path / "straight"), _weights(out)
        assert want.keys() == got.keys()
        for name in want:
            assert torch.equal(want[name], got[name]), f"{case}: {name} differs"
        assert _history(out) == _history(tmp_path / "straight")


def test_unknown_hyperparameter_lists_the_valid_names(
    digits: tuple[str, str], tmp_path: Path
) -> None:
    result = run_trainer(
        ["--dataset-uri", digits[0], "--output-uri", str(tmp_path), "--hparam", "hiden=32"]
    )
    assert result.returncode == 2
    assert (
        "unknown hyperparameter 'hiden' for model 'mlp'; valid: activation, dropout, hidden"
        in result.stderr
    )
    katib_style = run_trainer(
        [
            "--dataset-uri",
            digits[0],
            "--output-uri",
            str(tmp_path),
            "--model-type",
            "cnn",
            "--layers=3",
        ]
    )
    assert katib_style.returncode == 2
    assert "valid: channels, dropout, hidden, kernel_size" in katib_style.stderr


def test_bad_dataset_digest_stops_before_training(digits: tuple[str, str], tmp_path: Path) -> None:
    wrong = "sha256:" + "0" * 64
    result = run_trainer(
        ["--dataset-uri", digits[0], "--dataset-digest", wrong, "--output-uri", str(tmp_path / "o")]
    )
    assert result.returncode == 1
    assert (
        f"dataset digest mismatch for '{digits[0]}': expected {wrong}, found {digits[1]}"
        in result.stderr
    )
    assert not (tmp_path / "o").exists()


def test_nan_loss_stops_with_a_clear_message(digits: tuple[str, str], tmp_path: Path) -> None:
    args = [
        "--dataset-uri",
        digits[0],
        "--output-uri",
        str(tmp_path),
        "--optimizer",
        "sgd",
        "--lr",
        "1e8",
        "--epochs",
        "2",
    ]
    result = run_trainer(args)
    assert result.returncode == 1
    assert "error: loss is not finite (nan) at epoch 1" in result.stderr
    assert "Lower the learning rate" in result.stderr
    assert not (tmp_path / "model.onnx").exists()
