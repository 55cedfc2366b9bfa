"""kopf handlers for TuningSweep, and the watches that move it along.

Create, update and resume (every object, each time the operator starts) run the same level-based
reconcile (``reconcilers/tuningsweep.py``). After that the operator reacts to what can move a
TuningSweep, as controller-runtime's watches do:

- the Dataset of its trial template changes: a sweep waiting for its dataset version starts as
  soon as the version exists, with no timer;
- its Katib Experiment (a child, with the ``katib`` provider) reports a state, is deleted, or is
  changed by someone else: Katib updates the Experiment's status whenever a trial moves;
- its local study (the ``local`` provider) is in flight: the requeue loop looks again after a
  short delay (``requeue.py``); the study itself runs in a detached process.

A TuningSweep holds the cancel-run finalizer only while a local study is in flight (to stop it on
deletion); its watch events, the resync or the requeue loop stop the study and release it
(``runs.py``). Experiments carry owner references: the garbage collector removes them with it.
"""

from __future__ import annotations

from typing import Any

import kopf

from slipway.api.v1alpha1 import TUNING_SWEEP
from slipway.api.v1alpha1.common import API_VERSION, GROUP, VERSION
from slipway.api.v1alpha1.dataset import INFO as DATASET
from slipway.backends.tuning import tuning_backend
from slipway.reconcilers import tuningsweep as reconciler
from slipway.reconcilers.base import Context

from . import common, requeue, runs

PLURAL = TUNING_SWEEP.info.plural
KIND = TUNING_SWEEP.info.kind


def nudge(ctx: Context, bodies: list[dict[str, Any]]) -> None:
    """Reconcile these TuningSweeps now (the resync, the requeue loop, a watch)."""
    runs.nudge(ctx, KIND, bodies, reconciler.reconcile, reconciler.finalize)


def waiting_for(ctx: Context, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """The TuningSweeps whose template trains on ``dataset`` and that run no experiment of their
    generation yet."""
    meta = dataset["metadata"]
    found = []
    for sweep in ctx.cluster.list(API_VERSION, KIND, meta["namespace"]):
        template = ((sweep.get("spec") or {}).get("trialTemplate") or {}).get("spec") or {}
        running = ((sweep.get("status") or {}).get("experiment") or {}).get("generation")
        if (template.get("dataset") or {}).get("name") == meta["name"] and running != sweep[
            "metadata"
        ].get("generation"):
            found.append(sweep)
    return found


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    requeue.of(ctx).on(KIND, lambda ref: nudge(ctx, [ref]))

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def reconcile_tuning_sweep(body: kopf.Body, **_: Any) -> None:
        runs.run(ctx, KIND, common.plain(body), reconciler.reconcile)

    def being_deleted(body: kopf.Body, **_: Any) -> bool:
        return runs.deleting(body)

    @kopf.on.event(
        GROUP, VERSION, PLURAL, id="tuningsweep-deleted", when=being_deleted, registry=registry
    )
    def finalize_tuning_sweep(body: kopf.Body, **_: Any) -> None:
        nudge(ctx, [common.plain(body)])

    @kopf.on.event(
        GROUP,
        VERSION,
        DATASET.plural,
        id="dataset-changed-sweeps",
        when=common.not_listing,  # every TuningSweep is resumed at start anyway
        registry=registry,
    )
    def dataset_changed(body: kopf.Body, **_: Any) -> None:
        nudge(ctx, waiting_for(ctx, common.plain(body)))

    backend = tuning_backend(ctx.config.tuning, ctx.config)
    if backend.kind == "None":
        return
    common.watch_children(registry, ctx, KIND, backend.api_version, backend.kind, nudge)
