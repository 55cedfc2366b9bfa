"""Shared fixtures: a real digits snapshot and a helper that runs the trainer as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slipway_trainer.dataset import ingest

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(uri, digest)`` of a snapshot of builtin://digits."""
    store = tmp_path_factory.mktemp("store")
    result = ingest("builtin://digits", str(store), "digits", "v1")
    return result.uri, result.digest


def trainer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_trainer(
    args: list[str], env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m slipway_trainer ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "slipway_trainer", *args],
        env=env or trainer_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
