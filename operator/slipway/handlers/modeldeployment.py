"""kopf handlers for ModelDeployment and for the SeldonDeployments it owns.

Create, update, resume and the periodic resync all run the same level-based reconcile. A change
in one of our SeldonDeployments (Seldon reporting it Available or Failed) reconciles its owner at
once instead of waiting for the next resync. No finalizer: every child carries an owner reference,
so Kubernetes' garbage collector removes them with the ModelDeployment.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import kopf

from slipway import metrics
from slipway.api.v1alpha1 import MODEL_DEPLOYMENT
from slipway.api.v1alpha1.common import API_VERSION, GROUP, VERSION
from slipway.builders.meta import MANAGED_BY
from slipway.k8s import ApiError
from slipway.reconcilers import modeldeployment as reconciler
from slipway.reconcilers.base import Context

PLURAL = MODEL_DEPLOYMENT.info.plural
KIND = MODEL_DEPLOYMENT.info.kind
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks[(namespace, name)]


def run(ctx: Context, body: dict[str, Any]) -> None:
    """Reconcile one ModelDeployment, mapping the result onto kopf's retry semantics."""
    meta = body["metadata"]
    with metrics.observe(KIND) as outcome, _lock(meta["namespace"], meta["name"]):
        try:
            result = reconciler.reconcile(ctx, body)
        except ApiError as exc:
            if exc.retriable:
                raise kopf.TemporaryError(str(exc), delay=5) from exc
            raise
        if result.permanent:
            outcome.result = "invalid"
            raise kopf.PermanentError(result.permanent)
        if result.requeue_after:
            outcome.result = "requeue"
            raise kopf.TemporaryError("waiting", delay=result.requeue_after)


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, registry=registry)
    def reconcile_model_deployment(body: kopf.Body, **_: Any) -> None:
        run(ctx, _plain(body))

    @kopf.timer(
        *resource,
        interval=ctx.config.resync_seconds,
        idle=ctx.config.resync_seconds,
        registry=registry,
    )
    def resync_model_deployment(body: kopf.Body, **_: Any) -> None:
        run(ctx, _plain(body))

    @kopf.on.event(
        "machinelearning.seldon.io",
        "v1",
        "seldondeployments",
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
        when=_reported_by_seldon,
        registry=registry,
    )
    def seldon_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
        # Every event counts, the initial listing too: a watch that (re)starts late must not
        # miss a state Seldon reported meanwhile. A reconcile with nothing to change writes nothing.
        # Deletions are left to the resync: most come from the owner or its namespace going away.
        if type == "DELETED":
            return
        owner = next(
            (
                r
                for r in body.get("metadata", {}).get("ownerReferences", [])
                if r.get("kind") == KIND
            ),
            None,
        )
        if owner is None:
            return
        parent = ctx.cluster.get(API_VERSION, KIND, body["metadata"]["namespace"], owner["name"])
        if parent is not None and not parent["metadata"].get("deletionTimestamp"):
            run(ctx, parent)


def _reported_by_seldon(body: kopf.Body, **_: Any) -> bool:
    """Only a deployment whose controller has reported a state can change its owner's status."""
    return bool((body.get("status") or {}).get("state"))


def _plain(body: kopf.Body) -> dict[str, Any]:
    return {key: body[key] for key in body}
