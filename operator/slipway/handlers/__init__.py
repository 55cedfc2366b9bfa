"""The thin kopf layer: decide when to reconcile, delegate, and map results onto kopf's errors.

Handlers build no manifests and make no API calls of their own.
"""

from __future__ import annotations

import kopf

from slipway.reconcilers.base import Context

from . import dataset, modeldeployment, requeue, resync, settings, trainingjob, tuningsweep
from .resync import Peering
from .statusmetrics import register as register_status_metrics


def register(registry: kopf.OperatorRegistry, ctx: Context, peering: Peering | None = None) -> None:
    """Register every kind's handlers, the periodic resync and the operator settings.

    ``peering``: this replica's peering name and priority; None for a standalone operator.
    """
    settings.register(registry, ctx)
    requeue.register(registry, ctx)
    modeldeployment.register(registry, ctx)
    dataset.register(registry, ctx)
    trainingjob.register(registry, ctx)
    tuningsweep.register(registry, ctx)
    register_status_metrics(registry, ctx)
    resync.register(registry, ctx, peering)


__all__ = ["Peering", "register"]
