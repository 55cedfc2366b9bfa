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
"""

from __future__ import annotations

from typing import Any

import kopf

from slipway.api.v1alpha1 import MODEL_DEPLOYMENT
from slipway.api.v1alpha1.common import API_VERSION, GROUP, VERSION
from slipway.backends import serving_backend, traffic_backend
from slipway.builders.meta import MANAGED_BY, written_by_another
from slipway.k8s.resources import resource
from slipway.reconcilers import modeldeployment as reconciler
from slipway.reconcilers.base import Context
from slipway.reconcilers.modelsource import SOURCE_KINDS

from . import common

PLURAL = MODEL_DEPLOYMENT.info.plural
KIND = MODEL_DEPLOYMENT.info.kind


def nudge(ctx: Context, bodies: list[dict[str, Any]]) -> None:
    """Reconcile these ModelDeployments now (something they depend on changed)."""
    common.nudge(ctx, KIND, bodies, reconciler.reconcile)


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def reconcile_model_deployment(body: kopf.Body, **_: Any) -> None:
        common.run(ctx, KIND, common.plain(body), reconciler.reconcile)

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
