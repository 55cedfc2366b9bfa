"""Operator-wide kopf settings: bookkeeping out of the public status, watch health, metrics."""

from __future__ import annotations

from typing import Any

import kopf

from slipway import metrics
from slipway.reconcilers.base import Context

PREFIX = "slipway.dev"


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf's handler progress and last-handled state live in annotations under our prefix,
        # never in .status, which is the public API.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=PREFIX, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{PREFIX}/finalizer"
        # Restart a watch that went silent (kopf#585, #957).
        settings.watching.inactivity_timeout = 600
        settings.watching.server_timeout = 300
        settings.posting.level = 100  # our own Events only; no per-handler chatter
        settings.execution.max_workers = 16
        settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
        metrics.serve(ctx.config.metrics_port)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # The same server and credentials as the k8s layer (in-cluster, else the kubeconfig).
        return kopf.ConnectionInfo(**ctx.cluster.credentials())

    @kopf.on.probe(id="config", registry=registry)
    def config_loaded(**_: Any) -> str:
        return f"{len(ctx.config.node_pools)} node pools"
