"""Checkpoints: verified by digest, matched to their configuration, pruned to the newest few."""

from __future__ import annotations

from pathlib import Path

import torch

from slipway_trainer import checkpoint


def _state(key: str, step: int) -> dict:
    return {"run_key": key, "step": step, "weights": torch.full((3,), float(step))}


def test_newest_valid_checkpoint_of_this_configuration_wins(tmp_path: Path) -> None:
    folder = str(tmp_path)
    for step in (5, 10, 15, 20):
        checkpoint.save(folder, step, _state("A", step), keep=3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"ckpt-{s:09d}.pt{x}" for s in (10, 15, 20) for x in ("", ".sha256")]

    messages: list[str] = []
    assert checkpoint.load_latest(folder, "A", messages.append)["step"] == 20

    (tmp_path / "ckpt-000000020.pt.sha256").unlink()  # as if killed between the two writes
    checkpoint.save(folder, 25, _state("B", 25), keep=5)  # another configuration's checkpoint
    messages.clear()
    state = checkpoint.load_latest(folder, "A", messages.append)
    assert state is not None and state["step"] == 15
    assert torch.equal(state["weights"], torch.full((3,), 15.0))
    assert messages[0].startswith("skipping checkpoint") and "another configuration" in messages[0]
    assert "no digest file" in messages[1]
    assert messages[2].startswith("resuming from checkpoint") and "(step 15)" in messages[2]


def test_nothing_to_resume(tmp_path: Path) -> None:
    assert checkpoint.load_latest(str(tmp_path / "missing"), "A", lambda _m: None) is None
