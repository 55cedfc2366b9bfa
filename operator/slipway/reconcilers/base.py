"""What every reconciler shares: its inputs, its result, and the status write that skips no-ops."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from slipway.config import OperatorConfig
from slipway.k8s import Cluster

log = logging.getLogger("slipway.reconcile")


@dataclass(frozen=True)
class Context:
    """What a reconcile needs besides the object: API access and operator configuration."""

    cluster: Cluster
    config: OperatorConfig


@dataclass(frozen=True)
class Result:
    """How a reconcile ended, for the handler layer to map onto kopf.

    ``permanent``: the spec is wrong; retrying cannot help until the user changes it. Waiting on
    another object needs no field here: that object's changes reconcile again (a watch).
    """

    permanent: str | None = None


def describe_validation(error: ValidationError, root: str = "spec") -> str:
    """One line per problem, each naming the field: 'spec.model.uri: String should match ...'."""
    parts = []
    for e in error.errors():
        path = ".".join([root, *(str(p) for p in e["loc"])])
        parts.append(f"{path}: {e['msg']}")
    return "; ".join(parts)


def _comparable(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v is not None}


def write_status(ctx: Context, body: dict[str, Any], new: dict[str, Any]) -> bool:
    """Patch the status if it differs from the current one; returns whether it wrote."""
    old = body.get("status") or {}
    if _comparable(old) == _comparable(new):
        return False
    # Keys present before and absent now are cleared explicitly (merge patch removes on null).
    patch = {**{k: None for k in old if k not in new}, **new}
    meta = body["metadata"]
    ctx.cluster.patch_status(
        body["apiVersion"], body["kind"], meta["namespace"], meta["name"], patch
    )
    return True
