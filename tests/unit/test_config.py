"""Operator configuration: file plus environment, and clear errors when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.config import ConfigError, load_config


def test_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("nodePools:\n  - name: a100\n    nodeSelector: {pool: a100}\n")
    config = load_config(path, environ={"SLIPWAY_METRICS_PORT": "9100"})
    assert config.pool("a100") is not None and config.pool("a100").gpu_resource == "nvidia.com/gpu"
    assert config.metrics_port == 9100


def test_errors_name_each_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("nodePools:\n  - name: A100\n  - name: x\n    gpuResurce: y\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={"SLIPWAY_METRICS_PORT": "eighty"})
    text = str(err.value)
    assert "nodePools.0.name: String should match pattern" in text
    assert "nodePools.1.gpuResurce: Extra inputs are not permitted" in text
    assert "SLIPWAY_METRICS_PORT: Input should be a valid integer" in text


def test_duplicate_pools_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("nodePools: [{name: gpu}, {name: gpu}]\n")
    with pytest.raises(ConfigError, match="duplicate pool names"):
        load_config(environ={"SLIPWAY_CONFIG": str(path)})


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read operator configuration"):
        load_config(tmp_path / "missing.yaml", environ={})
