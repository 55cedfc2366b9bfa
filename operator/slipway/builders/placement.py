"""Turn a CR's placement (``nodePool``, ``gpus``) and resources into pod-spec fields.

Shared by training and serving so a node pool means the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

from slipway.api.v1alpha1.common import Placement, ResourceRequirements
from slipway.config import NodePool


class UnknownNodePool(ValueError):
    """The CR names a node pool the operator configuration does not define."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        choices = ", ".join(known) if known else "none are configured"
        super().__init__(
            f"spec.placement.nodePool {name!r} is not a configured node pool ({choices}); "
            "use one of them or add it to the operator's nodePools"
        )


def resolve_pool(placement: Placement, pools: list[NodePool]) -> NodePool | None:
    """The pool a placement names; None for no pool; ``UnknownNodePool`` if it is not defined."""
    if placement.node_pool is None:
        return None
    for pool in pools:
        if pool.name == placement.node_pool:
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
    resources: ResourceRequirements | None, placement: Placement, pool: NodePool | None
) -> dict[str, Any]:
    """A container's resources: the CR's CPU and memory plus the pool's GPU resource."""
    requests = dict((resources.requests or {}) if resources else {})
    limits = dict((resources.limits or {}) if resources else {})
    if placement.gpus:
        gpu = pool.gpu_resource if pool else "nvidia.com/gpu"
        limits[gpu] = str(placement.gpus)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = dict(sorted(requests.items()))
    if limits:
        out["limits"] = dict(sorted(limits.items()))
    return out
