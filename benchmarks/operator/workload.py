"""What the operator benchmark creates, and how it decides that the operator has caught up.

Both runs of one size, the operator's and the floor's, create the same N ModelDeployments from the
same number of client threads and are timed by the same check (`wait_children`), so their times
compare like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slipway.backends import serving_backend, traffic_backend
from slipway.config import OperatorConfig
from slipway.k8s import Cluster

API = "slipway.dev/v1alpha1"
NS = "bench"
CREATORS = 8  # client threads creating the ModelDeployments, in both runs
POLL = 0.2  # seconds between two convergence checks


def manifest(i: int) -> dict[str, Any]:
    """The i-th ModelDeployment: its own model URI and digest, on the GPU pool."""
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": f"model-{i:04d}", "namespace": NS},
        "spec": {
            "model": {"uri": f"s3://models/m{i}/model.onnx", "digest": f"sha256:{i:064x}"},
            "placement": {"nodePool": "gpu", "gpus": 1},
        },
    }


def create_all(
    kube: Cluster, n: int, then: Callable[[int, dict[str, Any]], Future[None]] | None = None
) -> list[Future[None]]:
    """Create the N ModelDeployments from ``CREATORS`` threads; ``then(i, created)`` runs as each
    create returns (the floor hands the object to its workers there) and its futures come back."""

    def one(i: int) -> Future[None] | None:
        created = kube.create(manifest(i))
        return then(i, created) if then else None

    with ThreadPoolExecutor(CREATORS) as pool:
        return [f for f in pool.map(one, range(n)) if f is not None]


def child_kinds(config: OperatorConfig) -> list[tuple[str, str]]:
    """(apiVersion, kind) of every child a ModelDeployment gets, from the configured backends."""
    serving = serving_backend(config.serving)
    kinds = [(serving.api_version, serving.kind)] if serving.kind != "None" else []
    return kinds + list(traffic_backend(config.traffic).kinds)


class Children:
    """Counts the children in the bench namespace, one cheap request per kind (``limit=1``)."""

    def __init__(self, kube: Cluster, config: OperatorConfig) -> None:
        self.kube = kube
        self.kinds = child_kinds(config)
        self.requests = 0  # requests this check made, to tell them from the clients' own

    def all_exist(self, n: int) -> bool:
        for api_version, kind in self.kinds:
            self.requests += 1
            if self.kube.count(api_version, kind, NS) < n:
                return False
        return True

    def verify(self, n: int) -> None:
        """Once, after the timed part: every child really is there (full listings)."""
        for api_version, kind in self.kinds:
            found = len(self.kube.list(api_version, kind, NS, "app.kubernetes.io/part-of=slipway"))
            if found != n:
                raise AssertionError(f"{found} {kind}s for {n} ModelDeployments")


def wait_for(check: Callable[[], bool], timeout: float, interval: float = POLL) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"not converged after {timeout:.0f} s")


def ready_count(kube: Cluster) -> int:
    return sum(
        1
        for md in kube.list(API, "ModelDeployment", NS)
        for c in (md.get("status") or {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    )
