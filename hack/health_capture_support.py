"""What hack/capture_health_testdata.py captures with: API access and waits, the manifests it
creates, and the controllers it plays (Seldon, a webhook that refuses every call).

A file of the capture script, not of the operator: it runs from hack/ (``python
hack/capture_health_testdata.py``), which puts this folder on the import path.
"""

from __future__ import annotations

import copy
import http.server
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from slipway.config import OperatorConfig
from slipway.k8s import Cluster

ROOT = Path(__file__).resolve().parents[1]
API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
TRAINER = "trainer.kubeflow.org/v1alpha1"
KATIB = "kubeflow.org/v1beta1"
PYTORCH = "kubeflow.org/v1"
NOW = "2026-11-28T10:00:00Z"
POOLS = [
    {"name": "cpu", "nodeSelector": {"slipway.dev/pool": "cpu"}, "gpuResource": None},
    {
        "name": "gpu",
        "nodeSelector": {"slipway.dev/pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
]
TRAINER_SPEC = {"model": "mlp", "hyperparameters": {"hidden": "32"}, "epochs": 2, "batchSize": 64}
WAIT_S = 600.0
GATE_CLOSED = "WaitingForConfirmation"  # a rollout's reason while confirm-rollout refuses
Obj = dict[str, Any]


def say(message: str) -> None:
    print(f"capture: {message}", file=sys.stderr, flush=True)


def digest(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


def cond(kind: str, status: str = "True", reason: str = "", message: str = "") -> dict[str, str]:
    """A condition as the Kubeflow controllers write them."""
    return {
        "type": kind,
        "status": status,
        "reason": reason or kind,
        "message": message or kind,
        "lastTransitionTime": NOW,
        "lastUpdateTime": NOW,
    }


class Capture:
    """The API access, what has been written, and the waits."""

    def __init__(self, kube: Cluster, out: Path) -> None:
        self.kube = kube
        self.out = out
        self.written: list[Path] = []

    def get(self, api_version: str, kind: str, ns: str, name: str) -> Obj:
        obj = self.kube.get(api_version, kind, ns, name)
        if obj is None:
            raise RuntimeError(f"{kind} {ns}/{name} does not exist")
        return obj

    def until(
        self,
        api_version: str,
        kind: str,
        ns: str,
        name: str,
        check: Callable[[Obj], bool],
        what: str,
    ) -> Obj:
        deadline = time.monotonic() + WAIT_S
        obj: Obj = {}
        while time.monotonic() < deadline:
            obj = self.kube.get(api_version, kind, ns, name) or {}
            if obj and check(obj):
                return obj
            time.sleep(0.3)
        raise RuntimeError(
            f"{kind} {ns}/{name}: no {what} after {WAIT_S:.0f} s: {obj.get('status')}"
        )

    def save(self, obj: Obj, health: str, case: str) -> None:
        clean = copy.deepcopy(obj)
        clean["metadata"].pop("managedFields", None)
        folder = self.out / clean["kind"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{health}-{case}.yaml"
        path.write_text(yaml.safe_dump(clean, sort_keys=False, width=100))
        self.written.append(path)
        say(f"wrote {path.relative_to(self.out)}")

    def namespace(self, name: str) -> str:
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name


def phase(*phases: str) -> Callable[[Obj], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") in phases


def rollout_phase(*phases: str) -> Callable[[Obj], bool]:
    return lambda obj: ((obj.get("status") or {}).get("rollout") or {}).get("phase") in phases


class Refuser(http.server.BaseHTTPRequestHandler):
    """A webhook that refuses every call (403): a gate that stays closed."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"not approved yet"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class SeldonPlayer(threading.Thread):
    """Plays Seldon Core: a SeldonDeployment without a state becomes Available after a moment,
    unless its ModelDeployment is in ``held`` (the capture then sets its states itself)."""

    def __init__(self, kube: Cluster, namespace: str) -> None:
        super().__init__(daemon=True, name="seldon-player")
        self.kube, self.namespace = kube, namespace
        self.held: set[str] = set()
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.wait(0.5):
            for sdep in self.kube.list(SELDON, "SeldonDeployment", self.namespace):
                owner = sdep["metadata"]["labels"].get("slipway.dev/modeldeployment", "")
                if owner in self.held or (sdep.get("status") or {}).get("state"):
                    continue
                self.kube.patch_status(
                    SELDON,
                    "SeldonDeployment",
                    self.namespace,
                    sdep["metadata"]["name"],
                    available(sdep),
                )


def available(sdep: Obj) -> Obj:
    name = sdep["metadata"]["name"]
    deployment = f"{name}-default-0-{sdep['spec']['name']}"
    return {
        "state": "Available",
        "description": "",
        "replicas": 1,
        "deploymentStatus": {deployment: {"replicas": 1, "availableReplicas": 1}},
    }


def sdep_of(cap: Capture, ns: str, md: str, version_digest: str | None = None) -> Obj:
    def found() -> Obj | None:
        for sdep in cap.kube.list(
            SELDON, "SeldonDeployment", ns, f"slipway.dev/modeldeployment={md}"
        ):
            env = {e["name"]: e.get("value") for e in _container(sdep).get("env", [])}
            if version_digest is None or env.get("SLIPWAY_MODEL_SHA256") == version_digest:
                return sdep
        return None

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sdep = found()
        if sdep is not None:
            return sdep
        time.sleep(0.3)
    raise RuntimeError(f"no SeldonDeployment for ModelDeployment {ns}/{md}")


def _container(sdep: Obj) -> Obj:
    container: Obj = sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    return container


def config(namespace: str, store: Path, **providers: Any) -> OperatorConfig:
    return OperatorConfig.model_validate(
        {
            "nodePools": POOLS,
            "namespace": namespace,
            "metricsPort": 0,
            "healthPort": 0,
            "pipelines": "local",
            "training": "local",
            "tuning": "local",
            "localStore": str(store),
            **providers,
        }
    )


# ---- manifests ----------------------------------------------------------------------------------


def dataset(name: str, ns: str, **spec: Any) -> Obj:
    return {
        "apiVersion": API,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"source": "builtin://digits", **spec},
    }


def training_job(name: str, ns: str, **spec: Any) -> Obj:
    return {
        "apiVersion": API,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"dataset": {"name": "digits", "version": "v1"}, "trainer": TRAINER_SPEC, **spec},
    }


def sweep(name: str, ns: str, **template: Any) -> Obj:
    return {
        "apiVersion": API,
        "kind": "TuningSweep",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "trialTemplate": {
                "spec": {
                    "dataset": {"name": "digits", "version": "v1"},
                    "trainer": {"model": "mlp", "epochs": 1, "batchSize": 64, "seed": 7},
                    **template,
                }
            },
            "objective": {"type": "maximize", "objectiveMetricName": "val_accuracy"},
            "algorithm": {"algorithmName": "random"},
            "parameters": [
                {
                    "name": "learningRate",
                    "parameterType": "double",
                    "feasibleSpace": {"min": 0.001, "max": 0.01},
                }
            ],
            "parallelTrialCount": 1,
            "maxTrialCount": 2,
        },
    }


def model_deployment(name: str, ns: str, model: int, **rollout: Any) -> Obj:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {"uri": f"s3://models/{name}/{model}/model.onnx", "digest": digest(model)},
            "rollout": rollout or {"strategy": "Static"},
        },
    }


def canary(*metrics: Obj, interval: str = "1s", **analysis: Any) -> Obj:
    return {
        "strategy": "Canary",
        "analysis": {
            "interval": interval,
            "threshold": 1,
            "stepWeight": 50,
            "maxWeight": 50,
            "minSampleSize": 0,
            "inconclusiveLimit": 1,
            "metrics": list(metrics),
            **analysis,
        },
    }


def metric(name: str, query: str, maximum: float) -> Obj:
    return {"name": name, "query": query, "thresholdRange": {"max": maximum}, "interval": "1m"}


def child_of(cap: Capture, api_version: str, kind: str, ns: str, label: str, owner: str) -> Obj:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = cap.kube.list(api_version, kind, ns, f"slipway.dev/{label}={owner}")
        if found:
            return found[0]
        time.sleep(0.3)
    raise RuntimeError(f"no {kind} for {label} {ns}/{owner}")


def play(cap: Capture, obj: Obj, status: Obj, health: str, case: str) -> None:
    meta = obj["metadata"]
    live = cap.kube.patch_status(
        obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], status
    )
    cap.save(live, health, case)


def distributed(name: str, ns: str) -> Obj:
    return training_job(name, ns, workers=2, placement={"nodePool": "cpu"})
