"""ModelDeployments in the rollout tests: the operator under test (restartable), the manifests,
and reading back status, conditions, routes and Events through the API server."""

from __future__ import annotations

from typing import Any

from slipway.config import OperatorConfig
from slipway.k8s import Cluster
from slipway.runner import RunningOperator, start_in_thread

from .rollout_env import ISTIO, Model, wait_for

API = "slipway.dev/v1alpha1"
INTERVAL = 3  # seconds between checks
WINDOW = "6s"  # each metric's query window: a dozen scrapes (Prometheus scrapes every 0.5 s)


class Operator:
    """The operator under test, restartable (a restart is a new operator on the same cluster)."""

    def __init__(self, config: OperatorConfig, kubeconfig: str) -> None:
        self.config, self.kubeconfig = config, kubeconfig
        self.running: RunningOperator | None = start_in_thread(config, kubeconfig)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def start(self) -> None:
        self.running = start_in_thread(self.config, self.kubeconfig)


def analysis(**fields: Any) -> dict[str, Any]:
    return {
        "interval": f"{INTERVAL}s",
        "threshold": 2,
        "stepWeights": [20, 50],
        "minSampleSize": 5,
        "inconclusiveLimit": 2,
        "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": WINDOW},
            {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": WINDOW},
        ],
        **fields,
    }


def apply(kube: Cluster, ns: str, name: str, model: Model, strategy: str, **fields: Any) -> None:
    kube.apply(
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "model": model.spec(),
                "rollout": {"strategy": strategy, "analysis": analysis(**fields)},
            },
        }
    )


def status(kube: Cluster, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get(API, "ModelDeployment", ns, name) or {}
    return dict(obj.get("status") or {})


def rollout(kube: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(status(kube, ns, name).get("rollout") or {})


def condition(kube: Cluster, ns: str, name: str, type_: str) -> dict[str, Any]:
    for c in status(kube, ns, name).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def phase_is(kube: Cluster, ns: str, name: str, phase: str, timeout: float) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (r := rollout(kube, ns, name)).get("phase") == phase and r,
            timeout,
            f"{name}: rollout phase {phase}",
        )
    )


def serving(kube: Cluster, ns: str, name: str, model: Model, timeout: float = 60) -> None:
    """Wait until ``model`` is the stable version and Ready."""
    wait_for(
        lambda: (
            (s := status(kube, ns, name)).get("stable", {}).get("version") == model.version
            and condition(kube, ns, name, "Ready").get("status") == "True"
            and s
        ),
        timeout,
        f"{name}: {model.version} ready",
    )


def routes(kube: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    vs = kube.get(ISTIO, "VirtualService", ns, name) or {"spec": {"http": []}}
    return list(vs["spec"]["http"])


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [(r["destination"]["subset"], r["weight"]) for r in route["route"]]


def events(kube: Cluster, ns: str, name: str) -> list[tuple[str, str, str]]:
    return [
        (e["reason"], e["type"], e["message"])
        for e in kube.list("v1", "Event", ns)
        if e["involvedObject"]["name"] == name
    ]


def in_order(seen: list[Any], expected: list[Any]) -> bool:
    """Whether ``expected`` occurs in ``seen`` in this order (other entries may come between)."""
    it = iter(seen)
    return all(any(item == want for item in it) for want in expected)
