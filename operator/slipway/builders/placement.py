"""Turn a CR's placement (``nodePool``, ``gpus``) and resources into pod-spec fields.

Shared by training and serving so a node pool means the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

from slipway.api.v1alpha1.common import Placement, ResourceRequirements
from slipway.config import DEFAULT_GPU_RESOURCE, NodePool


class PlacementError(ValueError):
    """A placement the operator configuration cannot satisfy; ``reason`` is the condition's."""

    reason = "InvalidPlacement"


class UnknownNodePool(PlacementError):
    """The CR names a node pool the operator configuration does not define."""

    reason = "UnknownNodePool"

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        choices = ", ".join(known) if known else "none are configured"
        super().__init__(
            f"spec.placement.nodePool {name!r} is not a configured node pool ({choices}); "
            "use one of them or add it to the operator's nodePools"
        )


class NoGPUsOnPool(PlacementError):
    """The CR asks for GPUs on a pool that declares none (``gpuResource: null``)."""

    reason = "NoGPUsOnPool"

    def __init__(self, pool: NodePool, gpus: int, gpu_pools: list[str]) -> None:
        others = f"a GPU pool ({', '.join(gpu_pools)})" if gpu_pools else "a pool with GPUs"
        super().__init__(
            f"spec.placement.gpus is {gpus} but node pool {pool.name!r} has no GPUs "
            f"(gpuResource: null in the operator's nodePools); set spec.placement.gpus to 0 or "
            f"choose {others}"
        )


def resolve_pool(placement: Placement, pools: list[NodePool]) -> NodePool | None:
    """The pool a placement names; None for no pool.

    Raises ``UnknownNodePool`` for a pool that is not defined and ``NoGPUsOnPool`` for GPUs
    asked on a CPU-only pool, before anything is rendered.
    """
    if placement.node_pool is None:
        return None
    for pool in pools:
        if pool.name == placement.node_pool:
            if placement.gpus and pool.gpu_resource is None:
                gpu_pools = [p.name for p in pools if p.gpu_resource is not None]
                raise NoGPUsOnPool(pool, placement.gpus, gpu_pools)
            return pool
    raise UnknownNodePool(placement.node_pool, [p.name for p in pools])


def pod_placement(pool: NodePool | None) -> dict[str, Any]:
    """nodeSelector, tolerations and priority class for pods on ``pool``."""
    if pool is None:
        return {}
    out: dict[str, Any] = {}
    if pool.node_selector:
        out["nodeSelector"] = dict(sorted(pool.node_selector.items()))
    if pool.tolerations:
        out["tolerations"] = [t.model_dump(exclude_none=True) for t in pool.tolerations]
    if pool.priority_class_name:
        out["priorityClassName"] = pool.priority_class_name
    return out


def container_resources(
    resources: ResourceRequirements | None,
    placement: Placement,
    pool: NodePool | None,
    default_requests: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A container's resources: the CR's CPU and memory plus the pool's GPU resource.

    ``default_requests`` fill in the requests the CR leaves out (where it sets only a limit,
    Kubernetes uses the limit as the request), so every pod is scheduled with a request.
    """
    default_requests = default_requests or {}
    requests = dict((resources.requests or {}) if resources else {})
    limits = dict((resources.limits or {}) if resources else {})
    if placement.gpus:
        gpu = pool.gpu_resource if pool else DEFAULT_GPU_RESOURCE
        if gpu is None:
            raise ValueError("GPUs on a CPU-only pool: resolve_pool refuses this placement")
        limits[gpu] = str(placement.gpus)
    for name, quantity in default_requests.items():
        # With only a limit set, Kubernetes makes the request equal to it: leave that alone.
        if name not in limits:
            requests.setdefault(name, quantity)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = dict(sorted(requests.items()))
    if limits:
        out["limits"] = dict(sorted(limits.items()))
    return out
