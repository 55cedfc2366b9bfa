"""One real control plane per test run (etcd + kube-apiserver + GC on loopback), one namespace
per test, and the operator running in-process against it.

The binaries come from ``slipway.devcluster`` (built once from tests/cluster/go.mod into the cache
outside the clone, or from $KUBEBUILDER_ASSETS), exactly as ``slipway dev up`` gets them.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.commands import crd_folders
from slipway.k8s import Cluster, connect
from slipway.runner import RunningOperator, start_in_thread

ROOT = Path(__file__).resolve().parents[2]
POOLS = {
    "nodePools": [
        {
            "name": "gpu",
            "nodeSelector": {"slipway.dev/pool": "gpu"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
        {"name": "cpu", "nodeSelector": {"slipway.dev/pool": "cpu"}, "gpuResource": None},
    ],
    "namespace": "t-*",  # the per-test namespaces; other tests run operators of their own
    "metricsPort": 0,
    "healthPort": 0,
}


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    dev = DevCluster(tmp_path_factory.mktemp("cluster"))
    dev.start(crds=crd_folders(ROOT))
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def kube(dev_cluster: DevCluster) -> Cluster:
    """API access for the tests themselves (a separate client from the operator's)."""
    return connect(str(dev_cluster.kubeconfig), field_manager="slipway-tests")


@pytest.fixture(scope="session")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local providers' store: runs (ingestion, training) and pvc:// data of the session."""
    return tmp_path_factory.mktemp("store")


def local_providers(store: Path) -> dict[str, Any]:
    """Configuration for Datasets and TrainingJobs run on this machine (pipelines with kfp.local,
    distributed training with torchrun), in the environments hack/venv.sh makes."""
    return {"pipelines": "local", "training": "local", "localStore": str(store)}


@pytest.fixture(scope="session")
def operator(dev_cluster: DevCluster, local_store: Path) -> Iterator[RunningOperator]:
    config = OperatorConfig.model_validate({**POOLS, **local_providers(local_store)})
    running = start_in_thread(config, str(dev_cluster.kubeconfig))
    yield running
    running.stop()


@pytest.fixture
def namespace(kube: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("v1", "Namespace", None, name)


def eventually(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}: {last!r}")


def port_open(port: int) -> bool:
    """Whether something listens on ``port`` on loopback."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not reaped yet, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def writes_in(cluster: Cluster, namespace: str) -> Iterator[list[str]]:
    """The writes ``cluster`` makes in ``namespace`` while the block runs ('METHOD path' each).

    The session's operator serves every test's namespace with one client, so its plain write
    counter also counts reconciles of other tests' objects (a namespace being deleted); this
    counts only the calls that concern one namespace.
    """
    seen: list[str] = []
    original = cluster._call
    marker = f"/namespaces/{namespace}/"

    def spy(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if method != "GET" and marker in path:
            seen.append(f"{method} {path}")
        return original(method, path, *args, **kwargs)

    cluster._call = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del cluster._call
