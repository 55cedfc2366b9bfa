"""The Helm chart: lint-clean, and every rendered object accepted by the real API server
(server-side dry run, so schemas, RBAC rule shapes and CRDs are all checked by Kubernetes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.binaries import ensure_binaries, ensure_helm
from slipway.k8s import Cluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "slipway"
NAMESPACE = "slipway-system"


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm()


def render(helm: Path, *args: str) -> list[dict]:  # type: ignore[type-arg]
    out = subprocess.run(
        # `helm template` renders offline; say which Kubernetes it renders for (the local one).
        [
            str(helm),
            "template",
            "slipway",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            "v1.34.4",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_helm_lint_is_clean(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_values_schema_rejects_a_bad_pool(helm: Path) -> None:
    result = subprocess.run(
        [
            str(helm),
            "template",
            "x",
            str(CHART),
            "--kube-version",
            "v1.34.4",
            "--set",
            "nodePools[0].name=Bad_Name",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "nodePools" in result.stderr


def test_rendered_chart_applies_with_server_side_dry_run(
    helm: Path, kube: Cluster, dev_cluster: DevCluster
) -> None:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    docs = render(helm, "--include-crds", "--set", "metrics.serviceMonitor.enabled=false")
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    result = subprocess.run(
        [
            str(ensure_binaries().kubectl),
            "--kubeconfig",
            str(dev_cluster.kubeconfig),
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=helm-test",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(docs)


def test_operator_runs_hardened(helm: Path) -> None:
    deployment = next(d for d in render(helm) if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_rbac_has_no_wildcards(helm: Path) -> None:
    role = next(d for d in render(helm) if d["kind"] == "ClusterRole")
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule


def test_configmap_is_a_valid_operator_configuration(helm: Path) -> None:
    config_map = next(d for d in render(helm) if d["kind"] == "ConfigMap")
    config = OperatorConfig.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    assert config.pool_names == ["gpu", "cpu"]
    assert config.pool("gpu").gpu_resource == "nvidia.com/gpu"  # type: ignore[union-attr]
