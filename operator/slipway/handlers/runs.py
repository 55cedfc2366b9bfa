"""Handler pieces shared by the kinds whose reconcile drives external runs (Dataset, TrainingJob).

On top of ``common``: a reconcile that leaves a run in flight (``runs.InFlight``) is scheduled
again on the requeue loop; and an object being deleted while it holds the cancel-run finalizer is
finalized (its run cancelled, the finalizer removed). kopf calls no deletion handler for such an
object (kopf's deletion handlers run only under kopf's own finalizer, which kopf would also add to
every object), so the finalizing is driven by the object's own watch events, by the periodic
resync, and by the requeue loop when a try fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kopf

from slipway.api.v1alpha1.common import API_VERSION
from slipway.k8s import ApiError
from slipway.reconcilers.base import Context, Result
from slipway.reconcilers.runs import FINALIZER, InFlight

from . import common, requeue

Finalize = Callable[[Context, dict[str, Any]], None]


def deleting(body: Any) -> bool:
    """Whether the object is being deleted and still holds the cancel-run finalizer."""
    meta = body.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and FINALIZER in (meta.get("finalizers") or [])


def reconcile(ctx: Context, kind: str, body: dict[str, Any], fn: common.Reconcile) -> Result:
    """Reconcile now; schedule the next look when a run is left in flight."""
    result = common.reconcile_now(ctx, kind, body, fn)
    if isinstance(result, InFlight):
        requeue.of(ctx).after(kind, body, result.requeue_after)
    return result


def run(ctx: Context, kind: str, body: dict[str, Any], fn: common.Reconcile) -> None:
    """From a kopf create/update/resume handler: kopf's retries for transient API errors."""
    try:
        result = reconcile(ctx, kind, body, fn)
    except ApiError as exc:
        if exc.retriable:
            raise kopf.TemporaryError(str(exc), delay=5) from exc
        raise
    if result.permanent:
        raise kopf.PermanentError(result.permanent)


def finalize_now(ctx: Context, kind: str, body: dict[str, Any], finalize: Finalize) -> bool:
    """If the object, read afresh, is being deleted with the cancel-run finalizer: cancel its run
    and remove the finalizer. Returns whether it was such an object."""
    meta = body["metadata"]
    with common._lock(kind, meta["namespace"], meta["name"]):
        fresh = ctx.cluster.get(API_VERSION, kind, meta["namespace"], meta["name"])
        if fresh is None or not deleting(fresh):
            return False
        finalize(ctx, fresh)
        return True


def nudge(
    ctx: Context,
    kind: str,
    bodies: list[dict[str, Any]],
    fn: common.Reconcile,
    finalize: Finalize,
) -> None:
    """Reconcile (or finalize) objects because something they depend on changed.

    A full body says whether the object is being deleted; a reference (metadata only: from the
    requeue loop or a child's event) is read afresh to find out.
    """
    for body in bodies:
        for attempt in range(1, common.EVENT_RETRIES + 1):
            try:
                maybe_going = deleting(body) or "spec" not in body
                if not (maybe_going and finalize_now(ctx, kind, body, finalize)):
                    reconcile(ctx, kind, body, fn)
                break
            except ApiError as exc:
                if not exc.retriable or attempt == common.EVENT_RETRIES:
                    raise
                time.sleep(attempt)


def requeued(
    ctx: Context, kind: str, fn: common.Reconcile, finalize: Finalize
) -> Callable[[dict[str, Any]], None]:
    """The requeue loop's action for ``kind``: reconcile (or finalize) the object, if this replica
    leads its namespace (a standby replica's loop may still hold entries from before)."""

    def action(ref: dict[str, Any]) -> None:
        from .resync import leading  # resync imports the kinds' modules: import it when used

        if leading(ctx, ref["metadata"]["namespace"]):
            nudge(ctx, kind, [ref], fn, finalize)

    return action
