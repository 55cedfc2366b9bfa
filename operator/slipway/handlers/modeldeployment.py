"""kopf handlers for ModelDeployment, and the watches that keep it at its desired state.

Create, update and resume (every object, each time the operator starts) run the same level-based
reconcile. After that the operator reacts to what can move a ModelDeployment away from its desired
state, as controller-runtime's owner watches do:

- one of its serving deployments reports a state (Seldon: Available, Failed), is deleted, or is
  changed by someone else;
- one of its routing objects (Service, DestinationRule, VirtualService) is deleted or changed by
  someone else;
- the TrainingJob or TuningSweep it takes its model from changes.

No finalizer, hence no per-object kopf timer (kopf puts a finalizer on every object a timer
watches, and deleting a ModelDeployment would then wait for the operator): every child carries an
owner reference, so Kubernetes' garbage collector removes them with the ModelDeployment. The
periodic resync is one loop for the whole operator instead (``resync.py``). A reconcile with
nothing to change writes nothing.

Time-driven work (a rollout's next check, the end of a keepPrevious window) comes back as
``Result.requeue_after`` and goes to the operator's one requeue loop (``requeue.py``). That loop
only hands a due ModelDeployment to a small pool of workers here, so a slow check (a webhook near
its timeout) never delays the others, and a replica that does not lead skips it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from slipway.api.v1alpha1 import MODEL_DEPLOYMENT
from slipway.api.v1alpha1.common import API_VERSION, GROUP, VERSION
from slipway.backends import serving_backend, traffic_backend
from slipway.builders.meta import MANAGED_BY, written_by_another
from slipway.k8s.resources import resource
from slipway.reconcilers import modeldeployment as reconciler
from slipway.reconcilers.base import Context, Result
from slipway.reconcilers.modelsource import SOURCE_KINDS

from . import common, requeue

PLURAL = MODEL_DEPLOYMENT.info.plural
KIND = MODEL_DEPLOYMENT.info.kind
CHECK_WORKERS = 16  # concurrent time-driven reconciles (rollout checks wait on Prometheus, hooks)
RETRY_S = 5.0  # a time-driven reconcile that failed (API error) is tried again after this
log = logging.getLogger("slipway.handlers")


def _reconcile(ctx: Context, body: dict[str, Any]) -> Result:
    """The reconcile, then its requested requeue (a rollout's next check) on the requeue loop."""
    result = reconciler.reconcile(ctx, body)
    if result.requeue_after is not None:
        try:
            loop = requeue.of(ctx)
        except KeyError:  # an operator assembled without the loop (a bare Context in a test)
            return result
        loop.after(KIND, body, result.requeue_after)
    return result


def nudge(ctx: Context, bodies: list[dict[str, Any]]) -> None:
    """Reconcile these ModelDeployments now (something they depend on changed)."""
    common.nudge(ctx, KIND, bodies, _reconcile)


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    pool = ThreadPoolExecutor(CHECK_WORKERS, thread_name_prefix="slipway-md-requeue")

    def due(ref: dict[str, Any]) -> None:
        """Run a requeued reconcile on a worker, leaving the requeue loop free at once."""
        meta = ref["metadata"]

        def work() -> None:
            from .resync import leading  # resync imports this module: import it when used

            try:
                if leading(ctx, meta["namespace"]):
                    nudge(ctx, [ref])
            except Exception:
                log.exception("requeued reconcile of %s/%s failed", meta["namespace"], meta["name"])
                requeue.of(ctx).after(KIND, ref, RETRY_S)

        pool.submit(work)

    try:
        requeue.of(ctx).on(KIND, due)
    except KeyError:
        log.warning("no requeue loop: rollout checks run only on events and resyncs")

    @kopf.on.cleanup(registry=registry)
    def stop_checks(**_: Any) -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def reconcile_model_deployment(body: kopf.Body, retry: int, **_: Any) -> None:
        common.run(ctx, KIND, common.plain(body), _reconcile, retry)

    serving = serving_backend(ctx.config.serving)
    traffic = traffic_backend(ctx.config.traffic)
    manager = ctx.cluster.field_manager
    children = [(serving.api_version, serving.kind)] if serving.kind != "None" else []
    children += list(traffic.kinds)

    def child_matters(body: kopf.Body, type: str | None, **_: Any) -> bool:
        # Decided on kopf's event loop, so that the events that need nothing (most of them: the
        # operator's own writes) never queue for a worker thread, holding their bodies meanwhile.
        reported = body.get("kind") == serving.kind and bool(
            (body.get("status") or {}).get("state")
        )
        if type is None:
            # The initial listing: every ModelDeployment is resumed anyway, but a state reported
            # while no watch ran must not be missed.
            return reported
        return type == "DELETED" or reported or written_by_another(body["metadata"], manager)

    def child_changed(body: kopf.Body, **_: Any) -> None:
        parent = common.controller_of(common.plain(body), KIND)
        if parent is not None:
            nudge(ctx, [parent])

    for api_version, kind in children:
        group, version = common.group_version(api_version)
        kopf.on.event(
            group,
            version,
            resource(api_version, kind).plural,
            id=f"{kind.lower()}-changed",
            labels={"app.kubernetes.io/managed-by": MANAGED_BY},
            when=child_matters,
            registry=registry,
        )(child_changed)

    def source_changed(body: kopf.Body, **_: Any) -> None:
        nudge(ctx, reconciler.referring_to(ctx, common.plain(body)))

    for kind in SOURCE_KINDS:
        plural = resource(API_VERSION, kind).plural
        kopf.on.event(
            GROUP,
            VERSION,
            plural,
            id=f"{kind.lower()}-changed",
            when=common.not_listing,  # every ModelDeployment is resumed at start anyway
            registry=registry,
        )(source_changed)
