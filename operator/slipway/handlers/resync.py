"""Periodic resync: every ``resyncSeconds`` the leading replica reconciles every object it serves.

It is the safety net behind the watches: an event that found the API server unreachable, or a
watch that restarted from a fresh listing (a child deleted meanwhile sends no DELETED event). A
kopf timer would do this per object, but kopf puts a finalizer on every object a timer watches;
this is one loop for the operator instead. It must act only while this replica leads, and kopf
keeps that state to itself, so the loop reads the peering record kopf maintains (each replica's
priority and last keep-alive) and stands by while another live replica outranks it or ties.
"""

from __future__ import annotations

import datetime
import fnmatch
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kopf

from slipway.api.v1alpha1.common import API_VERSION
from slipway.reconcilers.base import Context

from . import dataset, modeldeployment, trainingjob, tuningsweep

log = logging.getLogger("slipway.resync")
PEERING_API = "kopf.dev/v1"

Nudge = Callable[[Context, list[dict[str, Any]]], None]
# Every kind the operator reconciles, with the function that reconciles a list of its objects.
TARGETS: dict[str, Nudge] = {
    modeldeployment.KIND: modeldeployment.nudge,
    dataset.KIND: dataset.nudge,
    trainingjob.KIND: trainingjob.nudge,
    tuningsweep.KIND: tuningsweep.nudge,
}


@dataclass(frozen=True)
class Peering:
    """This replica's place in kopf peering: the record's name and this replica's priority."""

    name: str
    priority: int


def leads(record: dict[str, Any] | None, priority: int, now: datetime.datetime) -> bool:
    """Whether a replica of ``priority`` leads, by a kopf peering record (None: no record).

    kopf pauses a replica while another live one has a higher priority, and every replica of a
    tied priority. A record lists each replica's priority, keep-alive time and lifetime; this
    replica is one of the live entries of its own priority, so more than one means a tie.
    """
    live = []
    for peer in ((record or {}).get("status") or {}).values():
        seen = datetime.datetime.fromisoformat(peer["lastseen"])
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        if seen + datetime.timedelta(seconds=float(peer.get("lifetime", 60))) > now:
            live.append(int(peer.get("priority", 0)))
    return not any(p > priority for p in live) and live.count(priority) <= 1


def resync_once(ctx: Context, peering: Peering | None) -> int:
    """Reconcile every object this replica serves and leads; returns how many."""
    now = datetime.datetime.now(datetime.UTC)
    pattern = ctx.config.namespace
    leading: dict[str, bool] = {}
    done = 0
    for kind, nudge in TARGETS.items():
        bodies = ctx.cluster.list(
            API_VERSION, kind, pattern if pattern and not _is_glob(pattern) else None
        )
        for body in bodies:
            namespace = body["metadata"]["namespace"]
            if pattern and not fnmatch.fnmatchcase(namespace, pattern):
                continue
            if peering is not None:
                # Cluster-wide, kopf keeps one ClusterKopfPeering; namespaced, one KopfPeering each.
                scope = "" if pattern is None else namespace
                if scope not in leading:
                    peer_kind = "KopfPeering" if scope else "ClusterKopfPeering"
                    record = ctx.cluster.get(PEERING_API, peer_kind, scope or None, peering.name)
                    leading[scope] = leads(record, peering.priority, now)
                if not leading[scope]:
                    continue
            try:
                nudge(ctx, [body])
                done += 1
            except Exception:
                log.exception(
                    "resync of %s %s/%s failed", kind, namespace, body["metadata"]["name"]
                )
    return done


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


LEADER_CACHE_S = 5.0
_peerings: dict[int, Peering | None] = {}
_leading: dict[tuple[int, str], tuple[float, bool]] = {}


def leading(ctx: Context, namespace: str) -> bool:
    """Whether this replica leads ``namespace`` now (read from kopf's peering record at most
    every few seconds), for work that runs outside kopf's handlers: the requeue loop."""
    peering = _peerings.get(id(ctx))
    if peering is None:
        return True
    scope = "" if ctx.config.namespace is None else namespace
    key = (id(ctx), scope)
    cached = _leading.get(key)
    if cached is not None and time.monotonic() - cached[0] < LEADER_CACHE_S:
        return cached[1]
    peer_kind = "KopfPeering" if scope else "ClusterKopfPeering"
    record = ctx.cluster.get(PEERING_API, peer_kind, scope or None, peering.name)
    verdict = leads(record, peering.priority, datetime.datetime.now(datetime.UTC))
    _leading[key] = (time.monotonic(), verdict)
    return verdict


def register(registry: kopf.OperatorRegistry, ctx: Context, peering: Peering | None) -> None:
    stop = threading.Event()
    _peerings[id(ctx)] = peering

    def loop() -> None:
        while not stop.wait(ctx.config.resync_seconds):
            try:
                count = resync_once(ctx, peering)
                log.debug("resynced %d objects", count)
            except Exception:
                log.exception("resync failed; next in %.0f s", ctx.config.resync_seconds)

    @kopf.on.startup(registry=registry)
    def start_resync(**_: Any) -> None:
        threading.Thread(target=loop, name="slipway-resync", daemon=True).start()

    @kopf.on.cleanup(registry=registry)
    def stop_resync(**_: Any) -> None:
        stop.set()
