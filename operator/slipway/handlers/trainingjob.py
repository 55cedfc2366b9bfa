"""kopf handlers for TrainingJob, and the watches that move it along.

Create, update and resume (every object, each time the operator starts) run the same level-based
reconcile (``reconcilers/trainingjob.py``). After that the operator reacts to what can move a
TrainingJob, as controller-runtime's watches do:

- the Dataset it trains on changes (created, ingested, failed): a job waiting for its dataset
  version starts as soon as the version exists, with no timer;
- its distributed job (a TrainJob or PyTorchJob child, when the training provider renders one)
  reports a state, is deleted, or is changed by someone else;
- a run outside Kubernetes (a KFP run, local processes) is in flight: the requeue loop looks
  again after a delay that grows with the run's age (``requeue.py``, ``reconcilers/runs.py``).

A TrainingJob holds a finalizer only while such a run is in flight (to cancel it on deletion); its
own watch events, the resync or the requeue loop cancel the run and release it (``runs.py``).
Children carry owner references, so the garbage collector removes them with the TrainingJob.
"""

from __future__ import annotations

from typing import Any

import kopf

from slipway.api.v1alpha1 import TRAINING_JOB
from slipway.api.v1alpha1.common import API_VERSION, GROUP, VERSION
from slipway.api.v1alpha1.dataset import INFO as DATASET
from slipway.backends import training_backend
from slipway.reconcilers import trainingjob as reconciler
from slipway.reconcilers.base import Context

from . import common, requeue, runs

PLURAL = TRAINING_JOB.info.plural
KIND = TRAINING_JOB.info.kind


def nudge(ctx: Context, bodies: list[dict[str, Any]]) -> None:
    """Reconcile these TrainingJobs now (the resync, the requeue loop, a watch)."""
    runs.nudge(ctx, KIND, bodies, reconciler.reconcile, reconciler.finalize)


def waiting_for(ctx: Context, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """The TrainingJobs that train on ``dataset`` and have no run for their generation yet."""
    meta = dataset["metadata"]
    found = []
    for job in ctx.cluster.list(API_VERSION, KIND, meta["namespace"]):
        status = job.get("status") or {}
        generation = job["metadata"].get("generation")
        started = (status.get("run") or {}).get("generation") == generation or (
            status.get("reusedFrom") and status.get("observedGeneration") == generation
        )
        if ((job.get("spec") or {}).get("dataset") or {}).get("name") == meta["name"] and not (
            started
        ):
            found.append(job)
    return found


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    requeue.of(ctx).on(KIND, runs.requeued(ctx, KIND, reconciler.reconcile, reconciler.finalize))

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def reconcile_training_job(body: kopf.Body, **_: Any) -> None:
        runs.run(ctx, KIND, common.plain(body), reconciler.reconcile)

    def being_deleted(body: kopf.Body, **_: Any) -> bool:
        return runs.deleting(body)

    @kopf.on.event(
        GROUP, VERSION, PLURAL, id="trainingjob-deleted", when=being_deleted, registry=registry
    )
    def finalize_training_job(body: kopf.Body, **_: Any) -> None:
        nudge(ctx, [common.plain(body)])

    @kopf.on.event(
        GROUP,
        VERSION,
        DATASET.plural,
        id="dataset-changed",
        when=common.not_listing,  # every TrainingJob is resumed at start anyway
        registry=registry,
    )
    def dataset_changed(body: kopf.Body, **_: Any) -> None:
        nudge(ctx, waiting_for(ctx, common.plain(body)))

    backend = training_backend(ctx.config.training, ctx.config)
    if backend.kind == "None":
        return
    common.watch_children(registry, ctx, KIND, backend.api_version, backend.kind, nudge)
