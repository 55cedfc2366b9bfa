"""`slipway run` as a process, as the Helm chart runs it: liveness and metrics endpoints, and kopf
peering so that of two replicas only one acts."""

from __future__ import annotations

import datetime
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from slipway.devcluster import DevCluster
from slipway.devcluster.cluster import free_port
from slipway.handlers.resync import leads
from slipway.k8s import Cluster

from .conftest import POOLS, eventually

SELDON = "machinelearning.seldon.io/v1"


def http_get(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def reconciles(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith('slipway_reconcile_total{kind="ModelDeployment"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def peer_namespace(kube: Cluster) -> Iterator[str]:
    name = f"peer-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    # Namespaced operators elect a leader through a KopfPeering in each namespace they serve.
    kube.create(
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": "slipway", "namespace": name},
        }
    )
    yield name
    kube.delete("v1", "Namespace", None, name)


def start_replica(
    priority: int, namespace: str, kubeconfig: Path, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start `slipway run` with its own ports; return the process, its metrics port and log."""
    metrics, health = free_port(), free_port()
    config = tmp_path / f"config-{priority}.yaml"
    config.write_text(
        yaml.safe_dump(
            {**POOLS, "namespace": namespace, "metricsPort": metrics, "healthPort": health}
        )
    )
    log = tmp_path / f"operator-{priority}.log"
    command = ["slipway", "run", "--config", str(config), "--priority", str(priority), "--verbose"]
    proc = subprocess.Popen(
        [sys.executable, "-m", *command],
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    eventually(lambda: http_get(health, "/healthz"), timeout=60, what="liveness endpoint")
    return proc, metrics, log


def test_two_replicas_one_acts(
    kube: Cluster, dev_cluster: DevCluster, peer_namespace: str, tmp_path: Path
) -> None:
    """A second replica joining an active one stands by: it never reconciles.

    Peering is a keep-alive protocol, not a lock: two replicas started in the same instant can
    both act until each has seen the other's keep-alive (kopf documents this). A Deployment's
    rolling update starts the new pod while the old one is active, which is the case tested."""
    processes: list[subprocess.Popen[bytes]] = []

    def logs() -> str:
        return "\n".join(p.read_text()[-20000:] for p in sorted(tmp_path.glob("operator-*.log")))

    def peers() -> set[int]:
        peering = kube.get("kopf.dev/v1", "KopfPeering", peer_namespace, "slipway") or {}
        return {peer["priority"] for peer in (peering.get("status") or {}).values()}

    try:
        high, high_metrics, high_log = start_replica(
            20, peer_namespace, dev_cluster.kubeconfig, tmp_path
        )
        processes.append(high)
        eventually(
            lambda: "Resuming operations" in high_log.read_text(),
            timeout=60,
            what="the first replica to become active",
        )
        low, low_metrics, low_log = start_replica(
            10, peer_namespace, dev_cluster.kubeconfig, tmp_path
        )
        processes.append(low)
        eventually(lambda: peers() == {10, 20}, timeout=60, what="both replicas in the peering")
        # The resync loop reads this record, as kopf wrote it, to know which replica leads.
        record = kube.get("kopf.dev/v1", "KopfPeering", peer_namespace, "slipway")
        now = datetime.datetime.now(datetime.UTC)
        assert leads(record, 20, now) and not leads(record, 10, now)

        kube.apply(
            {
                "apiVersion": "slipway.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "peered", "namespace": peer_namespace},
                "spec": {"model": {"uri": "s3://m/peered.onnx", "digest": "sha256:" + "e" * 64}},
            }
        )
        eventually(
            lambda: kube.list(SELDON, "SeldonDeployment", peer_namespace),
            timeout=60,
            what="the active replica to create the SeldonDeployment",
        )
        active = eventually(lambda: reconciles(http_get(high_metrics, "/metrics")), what="metrics")
        assert active >= 1
        assert reconciles(http_get(low_metrics, "/metrics")) == 0
        assert "Resuming operations" not in low_log.read_text()
        assert "slipway.k8s" not in low_log.read_text()  # wrote nothing
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator logs:\n{logs()}") from None
    finally:
        for proc in processes:
            proc.terminate()
            proc.wait(30)
