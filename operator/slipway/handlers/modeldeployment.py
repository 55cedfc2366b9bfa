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

import threading
import time
from collections import defaultdict
from typing import Any

import kopf

from slipway import metrics
from slipway.api.v1alpha1 import MODEL_DEPLOYMENT
from slipway.api.v1alpha1.common import API_VERSION, GROUP, VERSION
from slipway.backends import serving_backend, traffic_backend
from slipway.builders.meta import MANAGED_BY, written_by_another
from slipway.k8s import ApiError
from slipway.k8s.resources import resource
from slipway.reconcilers import modeldeployment as reconciler
from slipway.reconcilers.base import Context, Result
from slipway.reconcilers.modelsource import SOURCE_KINDS

PLURAL = MODEL_DEPLOYMENT.info.plural
KIND = MODEL_DEPLOYMENT.info.kind
EVENT_RETRIES = 3  # an event-driven reconcile has no kopf retry: retry a transient API error here
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks[(namespace, name)]


def _reconcile(ctx: Context, body: dict[str, Any]) -> Result:
    """Reconcile the object as it is now, one reconcile per object at a time.

    The body that triggered the reconcile may be stale by the time the lock is held (a resync
    pass's listing, an event queued behind another reconcile of the same object), and a status
    compared against a stale one would be written, and announced, again. So it is read afresh;
    an object that is gone, replaced (another uid) or being deleted is left alone.
    """
    meta = body["metadata"]
    with metrics.observe(KIND) as outcome, _lock(meta["namespace"], meta["name"]):
        fresh = ctx.cluster.get(API_VERSION, KIND, meta["namespace"], meta["name"])
        if (
            fresh is None
            or fresh["metadata"]["uid"] != (meta.get("uid") or fresh["metadata"]["uid"])
            or fresh["metadata"].get("deletionTimestamp")
        ):
            outcome.result = "gone"
            return Result()
        result = reconciler.reconcile(ctx, fresh)
        if result.permanent:
            outcome.result = "invalid"
        return result


def run(ctx: Context, body: dict[str, Any]) -> None:
    """Reconcile one ModelDeployment, mapping the result onto kopf's retry semantics."""
    try:
        result = _reconcile(ctx, body)
    except ApiError as exc:
        if exc.retriable:
            raise kopf.TemporaryError(str(exc), delay=5) from exc
        raise
    if result.permanent:
        raise kopf.PermanentError(result.permanent)


def nudge(ctx: Context, bodies: list[dict[str, Any]]) -> None:
    """Reconcile ModelDeployments because something they depend on changed.

    The outcome is in each object's status; an invalid spec needs no retry here (the user's fix
    is an update, which the object's own handler takes).
    """
    for body in bodies:
        for attempt in range(1, EVENT_RETRIES + 1):
            try:
                _reconcile(ctx, body)
                break
            except ApiError as exc:
                if not exc.retriable or attempt == EVENT_RETRIES:
                    raise
                time.sleep(attempt)


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def reconcile_model_deployment(body: kopf.Body, **_: Any) -> None:
        run(ctx, _plain(body))

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
        parent = reconciler.controller_of(_plain(body))
        if parent is not None:
            nudge(ctx, [parent])

    for api_version, kind in children:
        group, version = _group_version(api_version)
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
        nudge(ctx, reconciler.referring_to(ctx, _plain(body)))

    for kind in SOURCE_KINDS:
        plural = resource(API_VERSION, kind).plural
        kopf.on.event(
            GROUP,
            VERSION,
            plural,
            id=f"{kind.lower()}-changed",
            when=_not_listing,  # every ModelDeployment is resumed at start anyway
            registry=registry,
        )(source_changed)


def _not_listing(type: str | None, **_: Any) -> bool:
    return type is not None


def _plain(body: kopf.Body) -> dict[str, Any]:
    return {key: body[key] for key in body}
