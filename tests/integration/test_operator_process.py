"""`slipway run` as a process, as the Helm chart runs it: liveness and metrics endpoints, and kopf
peering so that of two replicas only one acts."""

from __future__ import annotations

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


def test_two_replicas_one_acts(
    kube: Cluster, dev_cluster: DevCluster, peer_namespace: str, tmp_path: Path
) -> None:
    replicas = []
    try:
        for priority in (10, 20):
            metrics, health = free_port(), free_port()
            config = tmp_path / f"config-{priority}.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        **POOLS,
                        "namespace": peer_namespace,
                        "metricsPort": metrics,
                        "healthPort": health,
                    }
                )
            )
            log = (tmp_path / f"operator-{priority}.log").open("w")
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "slipway",
                    "run",
                    "--config",
                    str(config),
                    "--priority",
                    str(priority),
                ],
                env={"KUBECONFIG": str(dev_cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            replicas.append((priority, proc, metrics, health))
        for _, _, _, health in replicas:
            eventually(
                lambda health=health: http_get(health, "/healthz"),
                timeout=60,
                what="liveness endpoint",
            )

        kube.apply(
            {
                "apiVersion": "slipway.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "peered", "namespace": peer_namespace},
                "spec": {"model": {"uri": "s3://m/peered.onnx", "digest": "sha256:" + "e" * 64}},
            }
        )

        def logs() -> str:
            return "\n".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("operator-*.log")))

        try:
            eventually(
                lambda: kube.list(SELDON, "SeldonDeployment", peer_namespace),
                timeout=120,
                what="the active replica to create the SeldonDeployment",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator logs:\n{logs()}") from None
        low, high = replicas
        active = eventually(lambda: reconciles(http_get(high[2], "/metrics")), what="metrics")
        assert active >= 1
        assert reconciles(http_get(low[2], "/metrics")) == 0
        assert "slipway.k8s" not in (tmp_path / "operator-10.log").read_text()  # wrote nothing
    finally:
        for _, proc, _, _ in replicas:
            proc.terminate()
            proc.wait(30)
