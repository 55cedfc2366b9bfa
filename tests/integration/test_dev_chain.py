"""The whole chain on one machine, as `make dev` runs it: the end-to-end test of the local mode.

``slipway dev up --operator --examples --load --rollout`` runs on a control plane of its own (its
state folder and local store under ``tmp_path``, its ingress on a free port) with ``examples/``
shortened (fewer epochs and trials, a lower quality gate) and otherwise as written. Everything is
real: the operator with the local providers training and tuning in trainer processes, the Seldon
and Istio ingress stand-ins with model-server processes, Prometheus scraping them. Checked:

- ``dev up`` returns once the ingress answered a prediction, with every example Ready;
- that answer equals onnxruntime run here, in the model server's environment, on the served file;
- the sweep's best model is rolled out as a Canary judged on Prometheus and promoted, the steady
  load seeing both versions answer meanwhile, and Prometheus holding both versions' series;
- a second ``dev up`` starts nothing new; ``dev status`` lists every process; ``dev down`` leaves
  no process and no port behind.

The ingress's routing request by request (weights, header and cookie matches, mirroring) is
checked in ``test_standins.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from slipway.devcluster.chain import FIRST_DIGIT, predict
from slipway.devcluster.cluster import free_port
from slipway.devcluster.model_servers import model_server_python
from slipway.k8s import connect

from .conftest import ROOT, alive, eventually, port_open

API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
ONNX_RUN = """
import json, sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
image = np.asarray(json.loads(sys.argv[2]), dtype=np.float32).reshape(1, 1, 8, 8)
print(json.dumps(session.run(None, {session.get_inputs()[0].name: image})[0].ravel().tolist()))
"""


def short_examples(folder: Path) -> Path:
    """examples/ with a minute of training: 3 epochs, 2 trials of 2 epochs, gate at 0.5."""
    folder.mkdir()
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == "TrainingJob":
            doc["spec"]["trainer"]["epochs"] = 3
            doc["spec"]["qualityGate"]["minimum"] = 0.5
        if doc["kind"] == "TuningSweep":
            doc["spec"]["trialTemplate"]["spec"]["trainer"]["epochs"] = 2
            doc["spec"]["maxTrialCount"] = doc["spec"]["parallelTrialCount"] = 2
        (folder / path.name).write_text(yaml.safe_dump(doc))
    return folder


def slipway(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slipway", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def onnxruntime_answer(model_file: Path) -> list[float]:
    python = model_server_python(ROOT)
    run = subprocess.run(
        [str(python), "-c", ONNX_RUN, str(model_file), json.dumps(FIRST_DIGIT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    answer: list[float] = json.loads(run.stdout)
    return answer


def prometheus_versions(url: str) -> set[str]:
    query = urllib.parse.urlencode({"query": 'slipway_model_requests_total{namespace="default"}'})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as reply:
        result = json.load(reply)["data"]["result"]
    return {series["metric"].get("version", "") for series in result}


def test_make_dev_trains_serves_and_rolls_out_a_canary(tmp_path: Path) -> None:
    state, store = tmp_path / "dev", tmp_path / "store"
    env = {**os.environ, "SLIPWAY_LOCAL_STORE": str(store)}
    env.pop("KUBECONFIG", None)
    ingress_port = free_port()
    up_args = ["dev", "up", "--state", str(state), "--operator", "--examples", "--load"]
    up_args += ["--rollout", "--ingress-port", str(ingress_port)]
    up_args += ["--examples-dir", str(short_examples(tmp_path / "examples"))]
    pids: dict[str, int] = {}
    ports: list[int] = []
    try:
        up = slipway(env, *up_args, timeout=900)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert re.search(r"^first prediction \d+ s after `dev up`", up.stdout, re.M), up.stdout
        pids = json.loads((state / "pids.json").read_text())
        assert {"prometheus", "operator", "standins", "load"} <= set(pids)
        cluster = connect(str(state / "kubeconfig"), field_manager="test")
        ingress = f"http://127.0.0.1:{ingress_port}"
        _check_prediction(cluster, ingress, store)
        _check_canary(cluster, state)
        again = slipway(env, *up_args)
        assert again.returncode == 0 and "already running" in again.stdout, again.stderr
        assert json.loads((state / "pids.json").read_text()) == pids, "a second up started more"
        status = slipway(env, "dev", "status", "--state", str(state))
        for name in ("etcd", "kube-apiserver", "prometheus", "operator", "standins", "load"):
            assert re.search(rf"^{name} +pid \d+ +running +log ", status.stdout, re.M), name
        assert len(re.findall(r"^model-server .* Ready", status.stdout, re.M)) >= 1, status.stdout
        ports = [ingress_port, *_ports(state)]
    finally:
        down = slipway(env, "dev", "down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    for pid in pids.values():
        eventually(lambda pid=pid: not alive(pid), timeout=20, what=f"process {pid} gone")
    for port in ports:
        eventually(lambda port=port: not port_open(port), timeout=20, what=f"port {port} free")


def _ports(state: Path) -> list[int]:
    """Every other port the dev cluster listens on: API server, Prometheus, model servers."""
    server = yaml.safe_load((state / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
    report = json.loads((state / "standins.json").read_text())
    prometheus = (state / "prometheus" / "url").read_text().strip()
    return [
        int(server.rsplit(":", 1)[1]),
        int(prometheus.rsplit(":", 1)[1]),
        *(int(s["port"]) for s in report["modelServers"]),
    ]


def _check_prediction(cluster: Any, ingress: str, store: Path) -> None:
    """Every example Ready; an answer through the ingress equals onnxruntime on the served file."""
    for kind, name in [
        ("Dataset", "digits"),
        ("TrainingJob", "digits-cnn"),
        ("TuningSweep", "digits-mlp-sweep"),
        ("ModelDeployment", "digits"),
    ]:
        obj = cluster.get(API, kind, "default", name) or {}
        ready = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", (kind, obj["status"])
    code, version, answer = predict(ingress, "digits")
    assert code == 200, answer
    md = cluster.get(API, "ModelDeployment", "default", "digits")["status"]
    served = {v["version"]: v for v in (md.get("stable"), md.get("candidate")) if v}
    uri = served[version]["modelUri"]
    assert uri.startswith("pvc://"), uri
    expected = onnxruntime_answer(store / "pvc" / uri.removeprefix("pvc://"))
    got = answer["outputs"][0]["data"]
    assert len(got) == len(expected) == 10
    assert all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(got, expected, strict=True))


def _check_canary(cluster: Any, state: Path) -> None:
    """The sweep's best model promoted by a Canary whose checks read Prometheus."""
    sweep = cluster.get(API, "TuningSweep", "default", "digits-mlp-sweep")["status"]
    best = sweep["bestTrial"]["modelDigest"]

    def finished() -> dict[str, Any] | None:
        md = cluster.get(API, "ModelDeployment", "default", "digits")["status"]
        rollout = md.get("rollout") or {}
        return md if rollout.get("phase") in ("Succeeded", "Failed") else None

    md = eventually(finished, timeout=300, interval=2, what="the canary promoted or rolled back")
    rollout = md["rollout"]
    assert (rollout["strategy"], rollout["phase"]) == ("Canary", "Succeeded"), rollout
    assert rollout["candidateDigest"] == best and md["stable"]["modelDigest"] == best
    assert rollout["steps"] == 2 and rollout["weight"] == 100
    for metric in rollout["metrics"]:
        assert metric["verdict"] == "Passed" and metric["sampleSize"] >= 20, metric
    # Each version's lineage, in status and on its pods (Kiali's workload panel shows them).
    dataset = cluster.get(API, "Dataset", "default", "digits")["status"]["latestDigest"]
    promoted, kept = md["stable"]["lineage"], md["previous"]["lineage"]
    assert promoted["tuningSweep"] == "digits-mlp-sweep", promoted
    assert "trainingJob" not in promoted and "run" not in promoted, promoted  # not the CNN's
    assert promoted["trial"] == sweep["bestTrial"]["name"] and promoted["datasetDigest"] == dataset
    assert kept["trainingJob"] == "digits-cnn" and kept["datasetDigest"] == dataset, kept
    sdep = cluster.get(SELDON, "SeldonDeployment", "default", md["stable"]["seldonDeployment"])
    pod = sdep["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["annotations"]
    assert pod["lineage.slipway.dev/trial"] == promoted["trial"], pod
    versions = {rollout["stable"], rollout["candidate"]}
    url = (state / "prometheus" / "url").read_text().strip()
    assert versions <= prometheus_versions(url)
    load = (state / "logs" / "load.log").read_text()
    assert any(all(v in line for v in versions) for line in load.splitlines()), load
