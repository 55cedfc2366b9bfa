"""The chart's monitoring objects on the real API server, and its dashboards on a real Prometheus.

ServiceMonitor, PodMonitor and PrometheusRule are dry-run (server side, strict field validation)
against prometheus-operator's own CRDs at the version pinned in tests/cluster/crds/pins.yaml, and
so are the dashboards' ConfigMaps; a misspelt field must be refused.

Every PromQL expression of both Grafana dashboards (and each template variable's query) is then
run against a real Prometheus over data this test produces, and must answer without error and
with data. Nothing is played: the operator runs (in this process, its /metrics on a port), the
Seldon and Istio stand-ins run real model servers for real ONNX models, Prometheus scrapes both
(file discovery, as ``slipway dev up`` does; the PodMonitor's role in a cluster), requests flow
through the ingress, and a Canary rollout is judged by the operator from the same Prometheus
until it promotes. With ``SLIPWAY_DASHBOARD_DUMP=<file>`` the ModelDeployment dashboard's panels
are also written out as range queries (``hack/render_dashboard.py`` draws them).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.backends import seldon
from slipway.builders.meta import Owner
from slipway.builders.rollout import ModelVersion
from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.binaries import ensure_binaries, ensure_helm
from slipway.devcluster.cluster import free_port
from slipway.devcluster.model_servers import model_server_python, plan_predictors
from slipway.devcluster.prometheus import PrometheusServer
from slipway.devcluster.standins import TARGETS_FILE, read_state
from slipway.k8s import Cluster
from slipway.runner import start_in_thread

from .conftest import POOLS, ROOT, eventually
from .test_standins import BUILD, Client, Model, X
from .test_thirdparty_crds import CONFIG

CHART = ROOT / "charts" / "slipway"
DASHBOARDS = CHART / "files" / "dashboards"
NAMESPACE = "slipway-system"
API = "slipway.dev/v1alpha1"
ENABLED = (
    "metrics.serviceMonitor.enabled=true",
    "monitoring.podMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.dashboards.enabled=true",
)
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
RATE_WINDOW = "15s"  # Grafana's $__rate_interval for a 1 s scrape
# seconds of traffic before the rollout and after the promotion; longer for the README's picture
LINGER_S = 40 if os.environ.get("SLIPWAY_DASHBOARD_DUMP") else 5


def render(*sets: str) -> list[dict[str, Any]]:
    args = [arg for value in sets for arg in ("--set", value)]
    out = subprocess.run(
        [
            str(ensure_helm()),
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


def monitoring_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["kind"] in MONITORING_KINDS
        or "grafana_dashboard" in (d["metadata"].get("labels") or {})
    ]


def dry_run(dev: DevCluster, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ensure_binaries().kubectl),
            "--kubeconfig",
            str(dev.kubeconfig),
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager=helm-test",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
    )


def test_monitoring_objects_pass_a_strict_server_side_dry_run(
    kube: Cluster, dev_cluster: DevCluster
) -> None:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    assert not monitoring_objects(render()), "everything is off by default"
    docs = monitoring_objects(render(*ENABLED))
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "ConfigMap",
        "PodMonitor",
        "PrometheusRule",
        "ServiceMonitor",
    ]
    result = dry_run(dev_cluster, docs)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(docs)

    bad = copy.deepcopy(next(d for d in docs if d["kind"] == "PodMonitor"))
    bad["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    result = dry_run(dev_cluster, [bad])
    assert result.returncode != 0 and "intervall" in result.stderr, result.stderr


def test_podmonitor_selects_the_model_server_pods() -> None:
    """The PodMonitor's selector and port match the pods Seldon makes of a rendered
    SeldonDeployment (the stand-in's plan reads pod labels the way Seldon does)."""
    monitor = next(d for d in render(*ENABLED) if d["kind"] == "PodMonitor")
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"uri": "s3://m/1/model.onnx", "digest": "sha256:" + "ab" * 32}}
    )
    owner = Owner(API, "ModelDeployment", "digits", "ml", "uid-1")
    version = ModelVersion("s3://m/1/model.onnx", "sha256:" + "ab" * 32)
    sdep = seldon.build_seldon_deployment(owner, spec, version, None, CONFIG)
    (plan,) = plan_predictors(sdep)
    assert plan.spec is not None
    assert monitor["spec"]["selector"]["matchLabels"].items() <= plan.spec.labels.items()
    container = sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    ports = {p["name"] for p in container["ports"]}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports


# ---- the dashboards over a real run ----------------------------------------------------------


def dashboard(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DASHBOARDS / f"{name}.json").read_text())
    return loaded


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Model]:
    folder = tmp_path_factory.mktemp("models")
    out = subprocess.run(
        [
            str(model_server_python(ROOT)),
            "-c",
            BUILD,
            str(ROOT / "images" / "model-server" / "tests"),
            str(folder),
            json.dumps(X),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {
        int(seed): Model(Path(m["path"]).as_uri(), "sha256:" + m["digest"], m["y"])
        for seed, m in json.loads(out).items()
    }


@pytest.fixture(scope="module")
def standins(dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The Seldon and Istio stand-ins, as ``slipway dev up`` runs them: (ingress port, state)."""
    state = tmp_path_factory.mktemp("standins")
    port = free_port()
    with (state / "standins.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slipway.devcluster.standins",
                f"--kubeconfig={dev_cluster.kubeconfig}",
                f"--state={state}",
                f"--port={port}",
                f"--python={model_server_python(ROOT)}",
                "--interval=0.25",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            eventually(lambda: read_state(state) or proc.poll() is not None, what="stand-ins")
            assert proc.poll() is None, (state / "standins.log").read_text()
            yield port, state
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)


class Scrapes(threading.Thread):
    """Keeps Prometheus' targets in step: the operator's /metrics and the model servers the
    stand-ins run now (their file-discovery groups, with namespace and version labels)."""

    def __init__(self, prometheus: PrometheusServer, operator_port: int, state: Path) -> None:
        super().__init__(daemon=True)
        self.prometheus, self.operator_port, self.state = prometheus, operator_port, state
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                servers = json.loads((self.state / TARGETS_FILE).read_text())
            except (OSError, ValueError):
                servers = []
            groups = [([f"127.0.0.1:{self.operator_port}"], {"component": "operator"})]
            groups += [(g["targets"], g["labels"]) for g in servers]
            self.prometheus.set_targets(groups)


class Traffic(threading.Thread):
    """Steady requests through the ingress, with an invalid one now and then (4xx)."""

    def __init__(self, port: int, model: str) -> None:
        super().__init__(daemon=True)
        self.port, self.model = port, model
        self.stop = threading.Event()
        self.codes: dict[int, int] = {}

    def run(self) -> None:
        client = Client(self.port)
        sent = 0
        while not self.stop.wait(0.02):
            sent += 1
            try:
                if sent % 10 == 0:  # no inputs: the model server answers 4xx
                    client.conn.request("POST", f"/v2/models/{self.model}/infer", b'{"inputs": []}')
                    response = client.conn.getresponse()
                    response.read()
                    code = response.status
                else:
                    code = client.infer(self.model)[0]
            except OSError:
                client = Client(self.port)
                continue
            self.codes[code] = self.codes.get(code, 0) + 1


def deployment(name: str, ns: str, model: Model) -> dict[str, Any]:
    metric = {"name": "request-success-rate", "thresholdRange": {"min": 50}, "interval": "15s"}
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {"uri": model.uri, "digest": model.digest},
            "server": {"batching": {"enabled": True, "maxBatchSize": 8, "windowMs": 2}},
            "rollout": {
                "strategy": "Canary",
                "analysis": {
                    "interval": "3s",
                    "stepWeight": 50,
                    "maxWeight": 50,
                    "threshold": 5,
                    "minSampleSize": 1,
                    "metrics": [metric],
                },
            },
        },
    }


def rollout_phase(kube: Cluster, ns: str, name: str) -> str:
    md = kube.get(API, "ModelDeployment", ns, name) or {}
    return str(((md.get("status") or {}).get("rollout") or {}).get("phase") or "")


def test_every_dashboard_query_answers_with_data(
    kube: Cluster, dev_cluster: DevCluster, models: dict[int, Model], standins: Any
) -> None:
    port, state = standins
    ns, name = f"mon-{uuid.uuid4().hex[:8]}", "digits"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    metrics_port = free_port()
    started = time.time()
    with PrometheusServer(scrape_interval=1.0) as prometheus:
        config = OperatorConfig.model_validate(
            {**POOLS, "namespace": ns, "metricsPort": metrics_port}
            | {"prometheus": {"url": prometheus.url}}
        )
        operator = start_in_thread(config, str(dev_cluster.kubeconfig))
        scrapes, traffic = Scrapes(prometheus, metrics_port, state), Traffic(port, name)
        scrapes.start()
        try:
            kube.apply(deployment(name, ns, models[1]))
            eventually(
                lambda: rollout_phase(kube, ns, name) == "" and ready(kube, ns, name),
                timeout=120,
                what="version 1 serving",
            )
            traffic.start()
            time.sleep(LINGER_S)
            kube.apply(deployment(name, ns, models[2]))
            eventually(
                lambda: rollout_phase(kube, ns, name) in ("Succeeded", "Failed"),
                timeout=240,
                interval=1.0,
                what="the canary judged",
            )
            assert rollout_phase(kube, ns, name) == "Succeeded", kube.get(
                API, "ModelDeployment", ns, name
            )
            time.sleep(LINGER_S)  # scrapes of the promoted state
            check_dashboards(prometheus, ns, name, started)
        finally:
            traffic.stop.set()
            scrapes.stop.set()
            kube.delete("v1", "Namespace", None, ns)
            operator.stop()
    rejected = sum(n for code, n in traffic.codes.items() if 400 <= code < 500)
    assert traffic.codes.get(200, 0) > 100 and rejected > 0, traffic.codes


def ready(kube: Cluster, ns: str, name: str) -> bool:
    md = kube.get(API, "ModelDeployment", ns, name) or {}
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (md.get("status") or {}).get("conditions") or []
    )


def check_dashboards(prometheus: PrometheusServer, ns: str, name: str, started: float) -> None:
    values = {
        "namespace": ns,
        "modeldeployment": name,
        "__rate_interval": RATE_WINDOW,
        "__range": f"{int(time.time() - started) + 60}s",
    }
    empty, dump = [], []
    for board_name in ("slipway-operator", "slipway-modeldeployment"):
        board = dashboard(board_name)
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            selector, label = label_values(variable["query"]["query"])
            found = prometheus.query(substitute(selector, values))
            if not any(r["metric"].get(label) for r in found):
                empty.append(f"{board_name} variable {variable['name']}: {selector}")
        for title, expr in expressions(board):
            query = substitute(expr, values)
            if not prometheus.query(query):  # raises on a query Prometheus refuses
                empty.append(f"{board_name} / {title}: {query}")
            if board_name == "slipway-modeldeployment":
                data = query_range(prometheus, query, started)
                dump.append({"title": title, "expr": query, "data": data})
    assert not empty, "queries without data:\n" + "\n".join(empty)
    target = os.environ.get("SLIPWAY_DASHBOARD_DUMP")
    if target:
        Path(target).write_text(json.dumps({"namespace": ns, "name": name, "panels": dump}))


def label_values(query: str) -> tuple[str, str]:
    """``label_values(<selector>, <label>)`` as the selector and the label."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
    assert match, query
    return match.group(1), match.group(2)


def query_range(prometheus: PrometheusServer, query: str, started: float) -> Any:
    return prometheus.api(
        "query_range",
        {"query": query, "start": str(started), "end": str(time.time()), "step": "2"},
    )["result"]
