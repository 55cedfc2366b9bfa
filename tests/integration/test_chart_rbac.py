"""The operator works under the Helm chart's own RBAC, in each mode the chart supports.

The chart is rendered with helm under a release name that is not the chart's (so every name must
follow the release) and everything it renders is applied to the real API server: ServiceAccount,
ClusterRole and bindings, the Role in the watched namespace, the peering record, the ConfigMap,
the metrics Service. Not the Deployment: no image runs here. A token of the chart's ServiceAccount
comes from the TokenRequest API (``POST .../serviceaccounts/<sa>/token``), and the operator runs
with it, on the configuration the chart's ConfigMap holds: in-process (``start_in_thread``,
standalone), and as ``slipway run`` with peering, as the chart's Deployment runs it.

- Cluster-wide, and with ``watchNamespace``: a ModelDeployment gets its children, becomes Ready,
  promotes a new model (which deletes the old SeldonDeployment), and reports a missing
  TrainingJob or TuningSweep it takes its model from; kopf's bookkeeping annotation and the
  operator's Events are written. With ``watchNamespace`` a ModelDeployment elsewhere is ignored.
- A denied request fails the test: kopf logs a watch or a patch it may not make, the operator
  logs or raises on a call it may not make, and every such log line names the ServiceAccount.

Seldon's controller does not run here: the tests play it by patching each SeldonDeployment's
``status.state`` to ``Available`` through the API, as Seldon's operator does when its pods are
ready. The operators run in namespaces that do not match ``t-*``, so the session's operator
(which watches ``t-*``) never touches these objects; each test stops its own operator.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.binaries import ensure_binaries, ensure_helm
from slipway.devcluster.cluster import free_port
from slipway.k8s import Cluster
from slipway.runner import PEERING, start_in_thread

from .conftest import eventually

CHART = Path(__file__).resolve().parents[2] / "charts" / "slipway"
API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
ISTIO = "networking.istio.io/v1"
KOPF = "kopf.dev/v1"
V1 = ("s3://models/rbac/1/model.onnx", "sha256:" + "3c" * 32)
V2 = ("s3://models/rbac/2/model.onnx", "sha256:" + "4d" * 32)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Install:
    """The chart as applied: where it lives, and the ServiceAccount's credentials."""

    namespace: str
    fullname: str
    config: dict[str, Any]  # the operator configuration the chart's ConfigMap holds
    kubeconfig: Path  # authenticates as the chart's ServiceAccount
    kinds: list[str]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def operator_config(self) -> OperatorConfig:
        return OperatorConfig.model_validate({**self.config, "metricsPort": 0, "healthPort": 0})


def create_namespace(kube: Cluster, name: str) -> str:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def service_account_token(kube: Cluster, namespace: str, name: str) -> str:
    """A token for the ServiceAccount, from the TokenRequest API."""
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    answer = k8s.CoreV1Api(kube.api).create_namespaced_service_account_token(
        name, namespace, request
    )
    return str(answer.status.token)


def write_kubeconfig(admin: Path, token: str, out: Path) -> Path:
    """The dev cluster's server and CA with the ServiceAccount's token instead of the admin's."""
    cluster = yaml.safe_load(admin.read_text())["clusters"][0]
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "operator",
                        "context": {"cluster": cluster["name"], "user": "operator"},
                    }
                ],
                "current-context": "operator",
            }
        )
    )
    out.chmod(0o600)
    return out


def kubectl(dev_cluster: DevCluster, *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [str(ensure_binaries().kubectl), "--kubeconfig", str(dev_cluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def chart(
    kube: Cluster, dev_cluster: DevCluster, tmp_path: Path
) -> Iterator[Callable[[str], Install]]:
    """Render and apply the chart with a given ``watchNamespace`` ("" = cluster-wide); every
    object applied is removed afterwards."""
    cleanups: list[Callable[[], object]] = []

    def install(watch: str) -> Install:
        release, namespace = unique("mlops"), create_namespace(kube, unique("ops"))
        fullname = f"{release}-slipway"
        cleanups.append(lambda: kube.delete("v1", "Namespace", None, namespace))
        rendered = subprocess.run(
            [
                *(str(ensure_helm()), "template", release, str(CHART), "--namespace", namespace),
                *("--kube-version", "v1.34.4", "--set", f"watchNamespace={watch}"),
                *("--set", "resyncSeconds=2"),  # the resync loop runs under these rights too
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "Deployment"]
        if not watch and kube.get(KOPF, "ClusterKopfPeering", None, PEERING) is None:
            cleanups.append(lambda: kubectl(dev_cluster, "delete", "clusterkopfpeering", PEERING))
        for kind in ("ClusterRole", "ClusterRoleBinding"):
            cleanups.append(lambda kind=kind: kubectl(dev_cluster, "delete", kind, fullname))
        kubectl(dev_cluster, "apply", "--server-side", "--field-manager=helm", "-f", "-",
                stdin=yaml.safe_dump_all(docs))  # fmt: skip
        config_map = next(d for d in docs if d["kind"] == "ConfigMap")
        token = service_account_token(kube, namespace, fullname)
        return Install(
            namespace,
            fullname,
            yaml.safe_load(config_map["data"]["config.yaml"]),
            write_kubeconfig(dev_cluster.kubeconfig, token, tmp_path / f"{release}.kubeconfig"),
            sorted(d["kind"] for d in docs),
        )

    yield install
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture
def namespaces(kube: Cluster) -> Iterator[Callable[[str], str]]:
    """Unique namespaces (never ``t-*``), deleted after the test."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(create_namespace(kube, unique(prefix)))
        return made[-1]

    yield make
    for name in made:
        kube.delete("v1", "Namespace", None, name)


def denials(lines: list[str], user: str) -> list[str]:
    """Log lines about a request the API server refused, or the operator's client did."""
    return [
        line
        for line in lines
        if user in line or "Not enough permissions" in line or "does not declare" in line
    ]


def log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage() + (caplog.handler.format(record) if record.exc_info else "")
        for record in caplog.records
    ]


def model_deployment(
    name: str, namespace: str, model: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, **spec},
    }


def by_uri(model: tuple[str, str]) -> dict[str, str]:
    return {"uri": model[0], "digest": model[1]}


def status(kube: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict((kube.get(API, "ModelDeployment", ns, name) or {}).get("status") or {})


def condition(kube: Cluster, ns: str, name: str, type_: str) -> dict[str, Any]:
    found = [c for c in status(kube, ns, name).get("conditions") or [] if c["type"] == type_]
    return dict(found[0]) if found else {}


def play_seldon(kube: Cluster, ns: str, name: str) -> None:
    """What Seldon's controller does once the deployment's pods are ready."""
    kube.patch_status(SELDON, "SeldonDeployment", ns, name, {"state": "Available"})


def deployment_of(kube: Cluster, ns: str, name: str, role: str) -> str:
    return str(
        eventually(
            lambda: (status(kube, ns, name).get(role) or {}).get("seldonDeployment"),
            what=f"{name}: the {role} SeldonDeployment in status",
        )
    )


def serve_and_promote(kube: Cluster, ns: str) -> None:
    """The ModelDeployment flow, touching every verb the chart grants on its kinds."""
    kube.apply(model_deployment("digits", ns, by_uri(V1)))
    first = deployment_of(kube, ns, "digits", "stable")
    assert kube.get(SELDON, "SeldonDeployment", ns, first) is not None
    routes = [("v1", "Service"), (ISTIO, "DestinationRule"), (ISTIO, "VirtualService")]
    for api_version, kind in routes:
        found = eventually(lambda a=api_version, k=kind: kube.get(a, k, ns, "digits"), what=kind)
        assert found["metadata"]["ownerReferences"][0]["name"] == "digits"
    play_seldon(kube, ns, first)
    eventually(
        lambda: condition(kube, ns, "digits", "Ready").get("status") == "True",
        what="Ready once Seldon reports Available",
    )

    # A new model promoted at once: the old SeldonDeployment is deleted once the new one is ready.
    kube.apply(model_deployment("digits", ns, by_uri(V2), rollout={"candidateWeight": 100}))
    second = deployment_of(kube, ns, "digits", "candidate")
    play_seldon(kube, ns, second)
    eventually(
        lambda: kube.get(SELDON, "SeldonDeployment", ns, first) is None,
        what="the old version's SeldonDeployment deleted",
    )
    eventually(
        lambda: (status(kube, ns, "digits").get("stable") or {}).get("seldonDeployment") == second,
        what="the new version promoted",
    )

    # Model sources are read (and found missing): get on TrainingJobs and TuningSweeps.
    for name, model in [
        ("from-job", {"trainingJobRef": {"name": "absent"}}),
        ("from-sweep", {"tuningSweepRef": {"name": "absent"}}),
    ]:
        kube.apply(model_deployment(name, ns, model))
        eventually(
            lambda name=name: (
                condition(kube, ns, name, "Degraded").get("reason") == "ModelNotFound"
            ),
            what=f"{name}: ModelNotFound",
        )

    # kopf's bookkeeping (a merge patch on the object) and the operator's Events were written.
    meta = (kube.get(API, "ModelDeployment", ns, "digits") or {})["metadata"]
    assert "slipway.dev/last-handled-configuration" in (meta.get("annotations") or {}), meta
    events = kube.list("v1", "Event", ns)
    assert any(e["involvedObject"]["name"] == "digits" for e in events), events


def test_cluster_wide_under_the_charts_rbac(
    chart: Callable[[str], Install],
    namespaces: Callable[[str], str],
    kube: Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    install = chart("")
    assert "ClusterKopfPeering" in install.kinds and "Role" not in install.kinds
    assert "namespace" not in install.config
    apps = namespaces("apps")
    caplog.set_level(logging.WARNING)
    operator = start_in_thread(install.operator_config(), str(install.kubeconfig))
    try:
        serve_and_promote(kube, apps)
    finally:
        operator.stop()
    assert not denials(log_lines(caplog), install.user)


def test_one_namespace_under_the_charts_rbac(
    chart: Callable[[str], Install],
    namespaces: Callable[[str], str],
    kube: Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``watchNamespace: team-a`` (made unique per run): a Role there, nothing elsewhere."""
    watched, other = namespaces("team-a"), namespaces("team-b")
    install = chart(watched)
    assert {"Role", "RoleBinding", "KopfPeering"} <= set(install.kinds)
    assert "ClusterKopfPeering" not in install.kinds
    assert install.config["namespace"] == watched
    kube.apply(model_deployment("elsewhere", other, by_uri(V1)))
    caplog.set_level(logging.WARNING)
    operator = start_in_thread(install.operator_config(), str(install.kubeconfig))
    try:
        serve_and_promote(kube, watched)
    finally:
        operator.stop()
    # Ignored: not this operator's namespace (and its Role grants nothing there).
    assert status(kube, other, "elsewhere") == {}
    assert kube.list(SELDON, "SeldonDeployment", other) == []
    meta = (kube.get(API, "ModelDeployment", other, "elsewhere") or {})["metadata"]
    assert "slipway.dev/last-handled-configuration" not in (meta.get("annotations") or {})
    assert not denials(log_lines(caplog), install.user)


def http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "namespaced"])
def test_slipway_run_with_peering_under_the_charts_rbac(
    namespaced: bool,
    chart: Callable[[str], Install],
    namespaces: Callable[[str], str],
    kube: Cluster,
    tmp_path: Path,
) -> None:
    """``slipway run`` as the chart's Deployment runs it: kopf finds the peering record the chart
    ships (a namespaced operator without its KopfPeering would wait forever), keeps it alive,
    and acts; the resync loop reads it. Nothing is denied."""
    ns = namespaces("peer")
    install = chart(ns if namespaced else "")
    health = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({**install.config, "metricsPort": free_port(), "healthPort": health})
    )
    log = tmp_path / "operator.log"
    run = ["run", "--config", str(config), "--priority", "7", "--verbose"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "slipway", *run],
        env={"KUBECONFIG": str(install.kubeconfig), "PATH": "/usr/bin:/bin"}
        | {k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        eventually(lambda: http_ok(health, "/healthz"), timeout=60, what="liveness endpoint")
        kube.apply(model_deployment("peered", ns, by_uri(V1)))
        eventually(
            lambda: kube.list(SELDON, "SeldonDeployment", ns),
            timeout=60,
            what="the peered operator to act",
        )
        kind, scope = ("KopfPeering", ns) if namespaced else ("ClusterKopfPeering", None)
        record = kube.get(KOPF, kind, scope, PEERING) or {}
        assert 7 in [peer["priority"] for peer in (record.get("status") or {}).values()]
        eventually(
            lambda: re.search(r"resynced [1-9]", log.read_text()),
            what="a resync pass that read the peering record",
        )
        assert not denials(log.read_text().splitlines(), install.user)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{log.read_text()[-20000:]}") from None
    finally:
        proc.terminate()
        proc.wait(30)
