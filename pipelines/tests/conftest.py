"""Fixtures for pipeline tests: kfp.local with the subprocess runner in this interpreter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kfp import local

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def component_path() -> None:
    """Components run in subprocesses of this interpreter: put both packages on their path."""
    paths = [str(ROOT / "images" / "trainer" / "src"), str(ROOT / "pipelines")]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )


@pytest.fixture(scope="session")
def kfp_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Initialise kfp.local once; returns its pipeline root."""
    root = tmp_path_factory.mktemp("kfp-root")
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True
    )
    return root
