"""Which version was live when the status does not say: read from the deployments that exist.

A ModelDeployment's status records its stable version, and that record is what turns a new model
into a candidate instead of a replacement. If the first status write fails (the API server
unreachable, a refused write) and the spec changes before the next one succeeds, the record is
missing while a deployment of the old model is serving. Level-based reconciling means looking at
the world in that case: the deployments this object controls name the model they serve, and the
oldest of them was live first.
"""

from __future__ import annotations

from slipway.backends import ServingBackend
from slipway.builders.meta import Owner, controlled_by, owner_selector
from slipway.builders.rollout import ModelVersion

from .base import Context


def live_before(ctx: Context, owner: Owner, serving: ServingBackend) -> ModelVersion | None:
    """The model of the oldest deployment ``owner`` controls, or None when there is none."""
    if serving.kind == "None":
        return None
    found = [
        obj
        for obj in ctx.cluster.list(
            serving.api_version, serving.kind, owner.namespace, owner_selector(owner), cached=True
        )
        if controlled_by(obj, owner) and not obj["metadata"].get("deletionTimestamp")
    ]
    found.sort(key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
    for obj in found:
        version = serving.served(obj)
        if version is not None:
            return version
    return None
