"""kopf handlers for Dataset: reconcile on create, update and resume; follow ingestion runs.

Create, update and resume (every object, each time the operator starts) run the same level-based
reconcile (``reconcilers/dataset.py``). While an ingestion run is in flight the object is
reconciled again from the requeue loop (``requeue.py``); a Dataset being deleted with a run in
flight holds the cancel-run finalizer, and its own watch events (or the resync) cancel the run and
release it (``runs.py``). No kopf timer and no kopf finalizer: a Dataset without a run in flight
is deleted at once. A Dataset's changes also reconcile the TrainingJobs waiting for it
(``trainingjob.py``).
"""

from __future__ import annotations

from typing import Any

import kopf

from slipway.api.v1alpha1 import DATASET
from slipway.api.v1alpha1.common import GROUP, VERSION
from slipway.reconcilers import dataset as reconciler
from slipway.reconcilers.base import Context

from . import common, requeue, runs

PLURAL = DATASET.info.plural
KIND = DATASET.info.kind


def nudge(ctx: Context, bodies: list[dict[str, Any]]) -> None:
    """Reconcile these Datasets now (the resync, the requeue loop)."""
    runs.nudge(ctx, KIND, bodies, reconciler.reconcile, reconciler.finalize)


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    requeue.of(ctx).on(KIND, runs.requeued(ctx, KIND, reconciler.reconcile, reconciler.finalize))

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def reconcile_dataset(body: kopf.Body, **_: Any) -> None:
        runs.run(ctx, KIND, common.plain(body), reconciler.reconcile)

    def being_deleted(body: kopf.Body, **_: Any) -> bool:
        return runs.deleting(body)

    @kopf.on.event(
        GROUP, VERSION, PLURAL, id="dataset-deleted", when=being_deleted, registry=registry
    )
    def finalize_dataset(body: kopf.Body, **_: Any) -> None:
        nudge(ctx, [common.plain(body)])
