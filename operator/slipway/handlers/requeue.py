"""Reconcile an object again after a delay: controller-runtime's ``RequeueAfter``, one loop for
the whole operator.

A reconcile that leaves an external run in flight (a KFP run, a local process) returns
``runs.InFlight``; the handler then schedules the object here, and the loop reconciles it when its
time comes, on the object as it is then (a fresh read). Nothing is written while waiting: no kopf
progress annotation (as a ``TemporaryError`` retry would write on every poll), no finalizer (as a
kopf timer would add to every object). An object scheduled twice keeps the earlier time. A
reconcile that fails here is tried again after ``RETRY_S``; one that finds the run still in flight
schedules itself again, so the chain ends exactly when the run does. The periodic resync stays
the safety net behind it (an operator restart resumes every object, which schedules again).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf

from slipway.reconcilers.base import Context

log = logging.getLogger("slipway.requeue")
RETRY_S = 30.0

Key = tuple[str, str, str]  # kind, namespace, name
Action = Callable[[dict[str, Any]], None]


class Requeue:
    """A due-time queue of objects and the thread that reconciles them."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Key, str | None]] = []
        self._due: dict[Key, float] = {}
        self._actions: dict[str, Action] = {}
        self._wake = threading.Condition()
        self._stopped = False
        self._order = itertools.count()

    def on(self, kind: str, action: Action) -> None:
        """``action(ref)`` reconciles one object of ``kind`` (``ref``: its metadata only)."""
        self._actions[kind] = action

    def after(self, kind: str, body: dict[str, Any], delay: float) -> None:
        """Reconcile ``body`` again in ``delay`` seconds (or earlier, if already due earlier)."""
        meta = body["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        when = time.monotonic() + max(0.0, delay)
        with self._wake:
            if key in self._due and self._due[key] <= when:
                return
            self._due[key] = when
            heapq.heappush(self._heap, (when, next(self._order), key, meta.get("uid")))
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._due)

    def _next(self) -> tuple[Key, str | None] | None:
        """Block until an entry is due; None once stopped."""
        with self._wake:
            while not self._stopped:
                if not self._heap:
                    self._wake.wait()
                    continue
                when, _, key, uid = self._heap[0]
                if self._due.get(key) != when:  # superseded by an earlier entry
                    heapq.heappop(self._heap)
                    continue
                wait = when - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                del self._due[key]
                return key, uid
            return None

    def run(self) -> None:
        while (entry := self._next()) is not None:
            (kind, namespace, name), uid = entry
            ref = {"metadata": {"namespace": namespace, "name": name, "uid": uid}}
            try:
                self._actions[kind](ref)
            except Exception:
                log.exception("requeued reconcile of %s %s/%s failed", kind, namespace, name)
                self.after(kind, ref, RETRY_S)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()


_BY_CONTEXT: dict[int, Requeue] = {}


def of(ctx: Context) -> Requeue:
    """The requeue loop of the operator that ``ctx`` belongs to."""
    return _BY_CONTEXT[id(ctx)]


def register(registry: kopf.OperatorRegistry, ctx: Context) -> Requeue:
    """Create this operator's requeue loop; it runs from start-up to clean-up."""
    queue = Requeue()
    _BY_CONTEXT[id(ctx)] = queue

    @kopf.on.startup(registry=registry)
    def start_requeue(**_: Any) -> None:
        threading.Thread(target=queue.run, name="slipway-requeue", daemon=True).start()

    @kopf.on.cleanup(registry=registry)
    def stop_requeue(**_: Any) -> None:
        queue.stop()

    return queue
