"""What every kind's handlers share: one reconcile per object at a time, on the object as it is now,
with kopf's retry semantics; and the map from a child's event to its owner.

A kind registers its reconcile function (``reconcilers/<kind>.py``) with these helpers, so the
locking, the fresh read, the conflict retry and the error mapping are written once.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import kopf

from slipway import metrics
from slipway.api.v1alpha1.common import API_VERSION
from slipway.builders.meta import MANAGED_BY, written_by_another
from slipway.k8s import ApiError
from slipway.k8s.resources import resource
from slipway.reconcilers.base import Context, Result

Reconcile = Callable[[Context, dict[str, Any]], Result]

EVENT_RETRIES = 3  # an event-driven reconcile has no kopf retry: retry a transient API error here
CONFLICT_RETRIES = 3  # a status write that lost to a newer version: read again and redo
_locks: defaultdict[tuple[str, str, str], threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock(kind: str, namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks[(kind, namespace, name)]


def reconcile_now(ctx: Context, kind: str, body: dict[str, Any], reconcile: Reconcile) -> Result:
    """Reconcile the object as it is now, one reconcile per object at a time.

    The body that triggered the reconcile may be stale by the time the lock is held (a resync
    pass's listing, an event queued behind another reconcile of the same object), and a status
    compared against a stale one would be written, and announced, again. So it is read afresh;
    an object that is gone, replaced (another uid) or being deleted is left alone. A status write
    refused with 409 (someone wrote the object after this read: another replica during a peering
    overlap, or a spec change) is redone from a fresh read.
    """
    meta = body["metadata"]
    with metrics.observe(kind) as outcome, _lock(kind, meta["namespace"], meta["name"]):
        for attempt in range(1, CONFLICT_RETRIES + 1):
            fresh = ctx.cluster.get(API_VERSION, kind, meta["namespace"], meta["name"])
            if (
                fresh is None
                or fresh["metadata"]["uid"] != (meta.get("uid") or fresh["metadata"]["uid"])
                or fresh["metadata"].get("deletionTimestamp")
            ):
                outcome.result = "gone"
                return Result()
            try:
                result = reconcile(ctx, fresh)
            except ApiError as exc:
                if exc.status != 409 or attempt == CONFLICT_RETRIES:
                    raise
                continue
            if result.permanent:
                outcome.result = "invalid"
            return result
    raise AssertionError("unreachable")


def backoff(retry: int) -> float:
    """Seconds before kopf's next try: 2, 4, 8, ... up to a minute."""
    return float(min(60, 2 ** (retry + 1)))


def run(
    ctx: Context, kind: str, body: dict[str, Any], reconcile: Reconcile, retry: int = 0
) -> None:
    """Reconcile one object from a kopf handler, mapping the result onto kopf's retries.

    An API error that reaches here is about API access, not the spec (a rejected child is a
    condition already): an unreachable server, a conflict, a status write refused. It is retried
    with a growing delay, on the object as it is then.
    """
    try:
        result = reconcile_now(ctx, kind, body, reconcile)
    except ApiError as exc:
        raise kopf.TemporaryError(str(exc), delay=backoff(retry)) from exc
    if result.permanent:
        raise kopf.PermanentError(result.permanent)


def nudge(ctx: Context, kind: str, bodies: list[dict[str, Any]], reconcile: Reconcile) -> None:
    """Reconcile objects because something they depend on changed.

    The outcome is in each object's status; an invalid spec needs no retry here (the user's fix
    is an update, which the object's own handler takes).
    """
    for body in bodies:
        for attempt in range(1, EVENT_RETRIES + 1):
            try:
                reconcile_now(ctx, kind, body, reconcile)
                break
            except ApiError as exc:
                if not exc.retriable or attempt == EVENT_RETRIES:
                    raise
                time.sleep(attempt)


def controller_of(child: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """A reference (``metadata`` only) to the ``kind`` object controlling ``child``, or None.

    No API call: the reconcile reads the object itself, and skips it when it is gone or going.
    """
    meta = child["metadata"]
    ref = next(
        (
            r
            for r in meta.get("ownerReferences") or []
            if r.get("apiVersion") == API_VERSION and r.get("kind") == kind and r.get("controller")
        ),
        None,
    )
    if ref is None:
        return None
    return {
        "metadata": {"namespace": meta["namespace"], "name": ref["name"], "uid": ref.get("uid")}
    }


def group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def not_listing(type: str | None, **_: Any) -> bool:
    """kopf ``when=``: a real event, not the initial listing of a watch."""
    return type is not None


def plain(body: kopf.Body) -> dict[str, Any]:
    return {key: body[key] for key in body}


def watch_children(
    registry: kopf.OperatorRegistry,
    ctx: Context,
    kind: str,
    api_version: str,
    child_kind: str,
    nudge: Callable[[Context, list[dict[str, Any]]], None],
) -> None:
    """Reconcile the ``kind`` object controlling a ``child_kind`` child when the child reports
    conditions, is deleted, or is changed by another field manager (controller-runtime's owner
    watch). The filter runs on kopf's event loop, so the operator's own writes never take a
    worker thread."""
    manager = ctx.cluster.field_manager

    def child_matters(body: kopf.Body, type: str | None, **_: Any) -> bool:
        reported = bool((body.get("status") or {}).get("conditions"))
        if type is None:
            return reported
        return type == "DELETED" or reported or written_by_another(body["metadata"], manager)

    def child_changed(body: kopf.Body, **_: Any) -> None:
        parent = controller_of(plain(body), kind)
        if parent is not None:
            nudge(ctx, [parent])

    group, version = group_version(api_version)
    kopf.on.event(
        group,
        version,
        resource(api_version, child_kind).plural,
        id=f"{child_kind.lower()}-changed",
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
        when=child_matters,
        registry=registry,
    )(child_changed)
