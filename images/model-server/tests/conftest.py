"""pytest fixtures: the test models (built here, written to a temp dir) and running servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import onnx_models
from server_harness import ServerProcess, sha256


@pytest.fixture(scope="session")
def mlp_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    data, reference = onnx_models.mlp((4, 16, 3), seed=7)
    path = tmp_path_factory.mktemp("models") / "mlp.onnx"
    path.write_bytes(data)
    return path, sha256(data), reference


@pytest.fixture(scope="session")
def lookup_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    data, table = onnx_models.lookup()
    path = tmp_path_factory.mktemp("models") / "lookup.onnx"
    path.write_bytes(data)
    return path, sha256(data), table


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    """Call with an environment dict; every server started is killed after the test."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str]) -> ServerProcess:
        server = ServerProcess(tmp_path, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def mlp_server(
    tmp_path_factory: pytest.TempPathFactory, mlp_model: tuple[Path, str, object]
) -> Iterator[ServerProcess]:
    """A ready server for the MLP, batching off, shared by a module's tests."""
    path, digest, _ = mlp_model
    server = ServerProcess(
        tmp_path_factory.mktemp("server"),
        {"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": digest},
    )
    server.wait_ready()
    yield server
    server.kill()
