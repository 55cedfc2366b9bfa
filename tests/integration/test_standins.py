"""The local Seldon and Istio ingress stand-ins, on the real API server with the real operator.

Nothing is played by the test here: the stand-ins run as ``slipway dev up`` runs them (one
supervisor process, ``python -m slipway.devcluster.standins``), start real model-server processes
serving real ONNX models built by the model server's own test helpers (in its environment, which
has onnx), and route real HTTP through the ingress by the VirtualServices the operator wrote (or,
for header matches and mirroring, one the test writes in a namespace the operator does not watch).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slipway.devcluster import DevCluster
from slipway.devcluster.cluster import free_port
from slipway.devcluster.model_servers import model_server_python, plan_predictors
from slipway.devcluster.standins import read_state
from slipway.k8s import Cluster

from .conftest import ROOT, alive, eventually, port_open

API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
ISTIO = "networking.istio.io/v1"
X = [0.1, -0.2, 0.3, 0.5]

BUILD = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from onnx_models import mlp
x = np.array([json.loads(sys.argv[3])], dtype=np.float32)
out = {}
for seed in (1, 2, 3):
    data, reference = mlp(seed=seed)
    path = f"{sys.argv[2]}/model-{seed}.onnx"
    open(path, "wb").write(data)
    digest = hashlib.sha256(data).hexdigest()
    out[seed] = {"path": path, "digest": digest, "y": reference(x).ravel().tolist()}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Model:
    uri: str
    digest: str
    expected: list[float]

    @property
    def version(self) -> str:
        return "v" + self.digest.removeprefix("sha256:")[:8]


@dataclass(frozen=True)
class StandIns:
    url: str
    port: int
    state: Path
    pid: int

    def report(self) -> dict[str, Any]:
        return read_state(self.state) or {"modelServers": []}

    def servers(self, namespace: str) -> list[dict[str, Any]]:
        return [s for s in self.report()["modelServers"] if s["namespace"] == namespace]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Model]:
    """Three small MLPs (different weights), with what each answers for ``X``."""
    folder = tmp_path_factory.mktemp("models")
    tests = ROOT / "images" / "model-server" / "tests"
    python = model_server_python(ROOT)
    out = subprocess.run(
        [str(python), "-c", BUILD, str(tests), str(folder), json.dumps(X)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {
        int(seed): Model(Path(m["path"]).as_uri(), "sha256:" + m["digest"], m["y"])
        for seed, m in json.loads(out).items()
    }


@pytest.fixture(scope="module")
def standins(
    dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StandIns]:
    state = tmp_path_factory.mktemp("standins")
    port = free_port()
    log = (state / "standins.log").open("wb")
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
        eventually(lambda: read_state(state) or proc.poll() is not None, what="stand-ins up")
        assert proc.poll() is None, (state / "standins.log").read_text()
        yield StandIns(f"http://127.0.0.1:{port}", port, state, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()
    assert read_state(state) is None  # removed on a clean exit
    assert not port_open(port)


class Client:
    """One keep-alive HTTP connection to the ingress."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def infer(self, model: str, **headers: str) -> tuple[int, str, Any]:
        body = json.dumps(
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": X}]}
        )
        sent = {
            "Content-Type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        self.conn.request("POST", f"/v2/models/{model}/infer", body, sent)
        response = self.conn.getresponse()
        data = json.loads(response.read() or b"null")
        return response.status, response.getheader("x-slipway-version") or "", data


def output(answer: Any) -> list[float]:
    return [float(v) for v in answer["outputs"][0]["data"]]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-4 for x, y in zip(a, b, strict=True))


def sdep_status(kube: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict((kube.get(SELDON, "SeldonDeployment", ns, name) or {}).get("status") or {})


def condition(kube: Cluster, ns: str, name: str, type_: str) -> dict[str, Any]:
    md = kube.get(API, "ModelDeployment", ns, name) or {}
    found = [c for c in (md.get("status") or {}).get("conditions") or [] if c["type"] == type_]
    return dict(found[0]) if found else {}


def weights(kube: Cluster, ns: str, name: str) -> list[tuple[str, int]]:
    vs = kube.get(ISTIO, "VirtualService", ns, name) or {"spec": {"http": [{"route": []}]}}
    return [(r["destination"]["subset"], r["weight"]) for r in vs["spec"]["http"][0]["route"]]


def apply_model(kube: Cluster, ns: str, name: str, model: Model, weight: int = 10) -> None:
    kube.apply(
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "model": {"uri": model.uri, "digest": model.digest},
                "rollout": {"candidateWeight": weight},
            },
        }
    )


@pytest.mark.usefixtures("operator")
def test_model_deployment_served_split_restarted_and_stopped(
    kube: Cluster, namespace: str, standins: StandIns, models: dict[int, Model]
) -> None:
    ns, name = namespace, f"m{uuid.uuid4().hex[:6]}"
    v1, v2 = models[1], models[2]
    apply_model(kube, ns, name, v1)
    sdep1 = f"{name}-{v1.version}"
    eventually(
        lambda: sdep_status(kube, ns, sdep1).get("state") == "Available",
        timeout=60,
        what="the Seldon stand-in reports Available",
    )
    eventually(
        lambda: condition(kube, ns, name, "Ready").get("status") == "True",
        what="ModelDeployment Ready",
    )
    # On a cluster the Service routes only to pods carrying every label it selects; Seldon gives
    # pods the predictor's and component's labels, not the SeldonDeployment's own.
    service = kube.get("v1", "Service", ns, name) or {}
    selector = service["spec"]["selector"]
    assert len(standins.servers(ns)) == 1
    pod = plan_predictors(kube.get(SELDON, "SeldonDeployment", ns, sdep1) or {})[0].spec
    assert pod is not None
    missing = {k: v for k, v in selector.items() if pod.labels.get(k) != v}
    assert not missing, f"the Service selects {missing}, which the Seldon pods do not carry"
    client = Client(standins.port)
    status, version, answer = client.infer(name)
    assert status == 200, answer
    assert version == v1.version and close(output(answer), v1.expected)

    # A new model at candidateWeight 50: a second process, then a 50/50 split through the ingress.
    apply_model(kube, ns, name, v2, weight=50)
    eventually(
        lambda: weights(kube, ns, name) == [(v1.version, 50), (v2.version, 50)],
        timeout=60,
        what="50/50 split",
    )
    # The ingress follows the VirtualService within its poll interval: count only once it routes
    # by the new split (a candidate answer), or the requests sent in that interval skew the count.
    eventually(lambda: client.infer(name)[1] == v2.version, timeout=10, what="ingress follows")
    counts: Counter[str] = Counter()
    expected = {v1.version: v1.expected, v2.version: v2.expected}
    for _ in range(400):
        status, version, answer = client.infer(name)
        assert status == 200 and close(output(answer), expected[version]), (version, answer)
        counts[version] += 1
    assert 150 <= counts[v1.version] <= 250 and counts[v1.version] + counts[v2.version] == 400

    # A crashed model server is reported Failed, then restarted after the kubelet-like back-off.
    sdep2 = f"{name}-{v2.version}"
    [server] = [s for s in standins.servers(ns) if s["version"] == v2.version]
    os.kill(server["pid"], signal.SIGKILL)
    failed = eventually(
        lambda: (s := sdep_status(kube, ns, sdep2)).get("state") == "Failed" and s,
        what="Failed after the crash",
    )
    assert "exited with status -9" in failed["description"]
    back = eventually(
        lambda: [
            s for s in standins.servers(ns) if s["version"] == v2.version and s["phase"] == "Ready"
        ],
        timeout=40,
        what="restarted after the back-off",
    )
    assert back[0]["pid"] != server["pid"]
    eventually(lambda: sdep_status(kube, ns, sdep2).get("state") == "Available", what="Available")

    # Deleting the ModelDeployment stops its processes and frees their ports.
    running = standins.servers(ns)
    assert {s["version"] for s in running} == {v1.version, v2.version}
    kube.delete(API, "ModelDeployment", ns, name)
    eventually(lambda: not standins.servers(ns), timeout=60, what="processes stopped")
    for s in running:
        eventually(
            lambda s=s: not alive(s["pid"]) and not port_open(s["port"]),
            timeout=60,
            what=f"process {s['pid']} gone and port {s['port']} free",
        )
    status, _, answer = client.infer(name)
    assert status in (404, 503), answer


def seldon_deployment(ns: str, name: str, app: str, model: Model, **extra: str) -> dict[str, Any]:
    """A SeldonDeployment as a user (or another tool) writes it: Slipway's model server."""
    labels = {"app": app, "version": model.version}
    env = {
        **extra,
        "SLIPWAY_MODEL_NAME": app,
        "SLIPWAY_MODEL_VERSION": model.version,
        "SLIPWAY_MODEL_URI": model.uri,
        "SLIPWAY_MODEL_SHA256": model.digest,
        "SLIPWAY_PORT": "9000",
        "SLIPWAY_SHUTDOWN_DELAY_S": "0",
    }
    container = {
        "name": app,
        "image": "model-server",
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    return {
        "apiVersion": SELDON,
        "kind": "SeldonDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "protocol": "v2",
            "predictors": [
                {
                    "name": "default",
                    "labels": labels,
                    "componentSpecs": [
                        {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
                    ],
                    "graph": {
                        "name": app,
                        "type": "MODEL",
                        "endpoint": {"type": "REST", "httpPort": 9000},
                    },
                }
            ],
        },
    }


def requests_served(url: str, version: str) -> float:
    """The model server's own count of answered infer requests (its Prometheus metrics)."""
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("slipway_model_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels.get("code") == "200" and labels.get("version") == version:
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def lab(kube: Cluster) -> Iterator[str]:
    """A namespace the test operator does not watch (it watches t-*): objects written here are
    the test's own, and nothing fights over them."""
    name = f"u-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("v1", "Namespace", None, name)


def test_header_and_cookie_matches_mirroring_and_live_route_changes(
    kube: Cluster, lab: str, standins: StandIns, models: dict[int, Model]
) -> None:
    ns, app = lab, "hdr"
    v1, v2, v3 = models[1], models[2], models[3]
    for model in (v1, v2):
        kube.apply(seldon_deployment(ns, f"hdr-{model.version}", app, model))
    # a wrong digest: the server stays up, never ready, and says why
    wrong = Model(v3.uri, "sha256:" + "0" * 64, v3.expected)
    kube.apply(seldon_deployment(ns, "hdr-wrong", app, wrong))
    host = f"hdr.{ns}.svc.cluster.local"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hdr", "namespace": ns},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9000}]},
        }
    )
    kube.apply(
        {
            "apiVersion": ISTIO,
            "kind": "DestinationRule",
            "metadata": {"name": "hdr", "namespace": ns},
            "spec": {
                "host": host,
                "subsets": [
                    {"name": m.version, "labels": {"version": m.version}} for m in (v1, v2)
                ],
            },
        }
    )

    def virtual_service(default: Model) -> dict[str, Any]:
        def to(model: Model) -> list[dict[str, Any]]:
            return [{"destination": {"host": host, "subset": model.version}}]

        return {
            "apiVersion": ISTIO,
            "kind": "VirtualService",
            "metadata": {"name": "hdr", "namespace": ns},
            "spec": {
                "hosts": [host],
                "http": [
                    {
                        "name": "beta",
                        "match": [
                            {"headers": {"x-user": {"exact": "beta"}}},
                            {"headers": {"cookie": {"regex": "^(.*?;\\s*)?(group=beta)(;.*)?$"}}},
                        ],
                        "route": to(v2),
                    },
                    {
                        "name": "default",
                        "route": to(default),
                        "mirror": {"host": host, "subset": v2.version},
                        "mirrorPercentage": {"value": 100.0},
                    },
                ],
            },
        }

    kube.apply(virtual_service(default=v1))
    for model in (v1, v2):
        eventually(
            lambda m=model: sdep_status(kube, ns, f"hdr-{m.version}").get("state") == "Available",
            timeout=60,
            what=f"hdr-{model.version} Available",
        )
    failed = eventually(
        lambda: (s := sdep_status(kube, ns, "hdr-wrong")).get("state") == "Failed" and s,
        timeout=60,
        what="a wrong digest reported Failed",
    )
    assert "sha256 mismatch" in failed["description"]

    client = Client(standins.port)
    for headers, version in [
        ({"x_user": "beta"}, v2.version),
        ({"cookie": "session=7; group=beta"}, v2.version),
        ({"x_user": "alpha"}, v1.version),
        ({"cookie": "group=betamax"}, v1.version),
        ({}, v1.version),
    ]:
        for _ in range(10):
            status, answered, answer = client.infer(app, **headers)
            assert (status, answered) == (200, version), (headers, answer)

    # Mirroring: every default-route request is copied to v2, whose answers are dropped.
    [mirror] = [s for s in standins.servers(ns) if s["version"] == v2.version]
    mirror_url = f"http://127.0.0.1:{mirror['port']}"
    before = requests_served(mirror_url, v2.version)
    for _ in range(25):
        status, answered, _ = client.infer(app)
        assert (status, answered) == (200, v1.version)
    eventually(
        lambda: requests_served(mirror_url, v2.version) == before + 25,
        timeout=10,
        what="25 mirrored copies counted by v2",
    )

    # A change to the VirtualService is followed within a second or so.
    kube.apply(virtual_service(default=v2))
    changed = time.monotonic()
    eventually(lambda: client.infer(app)[1] == v2.version, timeout=5, what="new default route")
    assert time.monotonic() - changed < 3

    # A spec change replaces the process: the new one serves before the old one stops, so
    # requests sent all along never fail.
    [old] = [s for s in standins.servers(ns) if s["version"] == v2.version]
    kube.apply(seldon_deployment(ns, f"hdr-{v2.version}", app, v2, SLIPWAY_LOG_LEVEL="warning"))
    deadline = time.monotonic() + 60
    while True:
        status, answered, answer = client.infer(app)
        assert (status, answered) == (200, v2.version), answer
        now = [s for s in standins.servers(ns) if s["version"] == v2.version]
        if now and all(s["role"] == "serving" and s["pid"] != old["pid"] for s in now):
            break
        assert time.monotonic() < deadline, now
    eventually(lambda: not alive(old["pid"]), timeout=30, what="the old process stopped")
    assert sdep_status(kube, ns, f"hdr-{v2.version}")["state"] == "Available"
