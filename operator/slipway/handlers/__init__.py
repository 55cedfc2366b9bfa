"""The thin kopf layer: decide when to reconcile, delegate, and map results onto kopf's errors.

Handlers build no manifests and make no API calls of their own.
"""

from __future__ import annotations

import kopf

from slipway.reconcilers.base import Context

from . import modeldeployment, settings


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Register every kind's handlers, and the operator settings, into ``registry``."""
    settings.register(registry, ctx)
    modeldeployment.register(registry, ctx)
