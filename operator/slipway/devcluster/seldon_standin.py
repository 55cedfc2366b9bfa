"""The local Seldon stand-in: runs every SeldonDeployment's predictors as model-server processes.

On a cluster Seldon Core v1's controller turns a SeldonDeployment into Deployments and Services and
reports ``status.state``. Locally, this stand-in acts on the same SeldonDeployments (the operator
cannot tell the difference): ``sync`` is called with the current list of SeldonDeployments in all
namespaces (the supervisor polls it every half second) and

- starts one model-server process per predictor (``model_servers.py``);
- when a predictor's spec changes, starts the new process and stops the old one only once the new
  one is ready (a rolling update with one replica and no unavailability);
- when a process exits, reports it and restarts it after a back-off (10 s, doubling to 5 min,
  reset after a minute of readiness), as the kubelet restarts a crashed container;
- stops the processes of a SeldonDeployment that is gone;
- reports ``status`` as Seldon Core v1 does: ``state`` Creating / Available / Failed with the
  reason in ``description`` (the model server's readiness reason, or how the process exited),
  ``replicas``, ``deploymentStatus`` and ``address.url`` (locally, the process's loopback URL).
  A model that cannot load is Failed (the server stays up but will never be ready), a crashed
  process is Failed until it is back: neither is hidden behind a Creating that never ends.

Status is written only when it differs from what the SeldonDeployment already says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from slipway.k8s import ApiError, Cluster

from .model_servers import EXITED, FAILED, READY, ModelServer, Plan, ServerSpec, plan_predictors
from .routing import Endpoint

log = logging.getLogger("slipway.standins.seldon")

SELDON_API = "machinelearning.seldon.io/v1"
SELDON_KIND = "SeldonDeployment"
BACKOFF_S = (10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
STABLE_AFTER_S = 60.0  # readiness that long resets the restart back-off


@dataclass(frozen=True)
class PredictorState:
    """What the status of one predictor says: its phase (Creating/Available/Failed) and why."""

    name: str
    state: str
    reason: str = ""
    port: int | None = None
    deployment_name: str = ""


def seldon_status(predictors: list[PredictorState]) -> dict[str, Any]:
    """A SeldonDeployment's status from its predictors' states, in Seldon Core v1's shape.

    Failed if any predictor failed, Available when all are, Creating otherwise; the description
    names the predictor when there are several, and is absent when all is well.
    """
    if any(p.state == "Failed" for p in predictors):
        state = "Failed"
    elif predictors and all(p.state == "Available" for p in predictors):
        state = "Available"
    else:
        state = "Creating"
    troubled = [p for p in predictors if p.state == state and p.reason]
    several = len(predictors) > 1
    description = "; ".join(f"{p.name}: {p.reason}" if several else p.reason for p in troubled)
    running = [p for p in predictors if p.port is not None]
    status: dict[str, Any] = {
        "state": state,
        "description": description or None,
        "replicas": len(running),
        "deploymentStatus": {
            p.deployment_name: {
                "replicas": 1 if p.port is not None else 0,
                "availableReplicas": 1 if p.state == "Available" else 0,
            }
            for p in predictors
            if p.deployment_name
        },
    }
    if running:
        status["address"] = {"url": f"http://127.0.0.1:{running[0].port}"}
    return status


def needs_patch(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the live status differs from ``desired`` (a None in ``desired`` means absent)."""
    return any(live.get(key) != value for key, value in desired.items())


@dataclass
class Slot:
    """One predictor: its serving process, the one replacing it, and its restart bookkeeping."""

    plan: Plan
    current: ModelServer | None = None
    next: ModelServer | None = None
    restarts: int = 0
    restart_at: float | None = None
    failed_update: tuple[str, str] | None = None  # (fingerprint, reason) of a rejected new spec


class SeldonStandIn:
    """Plays Seldon Core v1's controller on the SeldonDeployments of every namespace."""

    def __init__(
        self,
        cluster: Cluster,
        python: Path,
        source: Path,
        logs: Path,
        store: Path,
        session: aiohttp.ClientSession,
    ) -> None:
        self.cluster = cluster
        self.python, self.source, self.logs, self.store = python, source, logs, store
        self.session = session
        self.slots: dict[tuple[str, str, str], Slot] = {}
        self._retired: list[ModelServer] = []
        self._stopping: set[asyncio.Task[None]] = set()

    def _log_path(self, spec: ServerSpec) -> Path:
        return self.logs / f"{spec.namespace}.{spec.deployment}.{spec.predictor}.log"

    async def _launch(self, spec: ServerSpec) -> ModelServer:
        server = ModelServer(spec, self._log_path(spec))
        await server.start(self.python, self.source, self.store)
        return server

    def _retire(self, server: ModelServer | None) -> None:
        """Mark ``server`` to be stopped by the next ``stop_retired``."""
        if server is not None:
            self._retired.append(server)

    def stop_retired(self) -> None:
        """Stop the servers retired by ``sync`` in the background (a grace period must not hold
        up the others). The supervisor calls it once the ingress no longer routes to them, as
        Kubernetes takes a pod out of its endpoints when it starts terminating."""
        for server in self._retired:
            task = asyncio.create_task(server.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        self._retired.clear()

    async def sync(self, sdeps: list[dict[str, Any]]) -> None:
        """Make the processes match ``sdeps``, probe them, and handle exits and updates."""
        plans = {plan.key: plan for sdep in sdeps for plan in plan_predictors(sdep)}
        for key in list(self.slots):
            if key not in plans:
                slot = self.slots.pop(key)
                self._retire(slot.current)
                self._retire(slot.next)
        for key, plan in plans.items():
            slot = self.slots.setdefault(key, Slot(plan))
            slot.plan = plan
            await self._converge(slot)
        servers = [s for slot in self.slots.values() for s in (slot.current, slot.next) if s]
        await asyncio.gather(*(s.probe(self.session) for s in servers))
        for slot in self.slots.values():
            self._after_probe(slot)

    async def _converge(self, slot: Slot) -> None:
        spec = slot.plan.spec
        if spec is None:  # nothing runnable: stop what ran before
            self._retire(slot.current)
            self._retire(slot.next)
            slot.current = slot.next = None
            return
        now = time.monotonic()
        current = slot.current
        if current is None or current.phase == EXITED:
            if current is not None and current.spec.fingerprint != spec.fingerprint:
                slot.restart_at, slot.restarts = None, 0  # a new spec starts at once
            if slot.restart_at is None or now >= slot.restart_at:
                slot.current, slot.restart_at = await self._launch(spec), None
            return
        if current.spec.fingerprint == spec.fingerprint:
            self._retire(slot.next)  # a change was reverted before it was rolled out
            slot.next, slot.failed_update = None, None
            return
        rejected = slot.failed_update is not None and slot.failed_update[0] == spec.fingerprint
        if not rejected and (slot.next is None or slot.next.spec.fingerprint != spec.fingerprint):
            self._retire(slot.next)
            slot.next, slot.failed_update = await self._launch(spec), None

    def _after_probe(self, slot: Slot) -> None:
        now = time.monotonic()
        new = slot.next
        if new is not None and new.phase == READY:  # the new one serves: retire the old one
            self._retire(slot.current)
            slot.current, slot.next, slot.restarts = new, None, 0
        elif new is not None and new.phase in (FAILED, EXITED):
            slot.failed_update = (new.spec.fingerprint, new.reason)
            self._retire(new)
            slot.next = None
        current = slot.current
        if current is None:
            return
        if current.phase == EXITED and slot.restart_at is None:
            delay = BACKOFF_S[min(slot.restarts, len(BACKOFF_S) - 1)]
            slot.restarts += 1
            slot.restart_at = now + delay
        ready_since = current.ready_since if current.phase == READY else None
        if ready_since is not None and now - ready_since >= STABLE_AFTER_S:
            slot.restarts = 0

    def predictor_state(self, slot: Slot) -> PredictorState:
        """The Seldon view of one predictor."""
        name = slot.plan.key[2]
        spec = slot.plan.spec
        dep_name = f"{slot.plan.key[1]}-{name}-0-{spec.container}" if spec else ""
        if spec is None:
            return PredictorState(name, "Failed", slot.plan.problem)
        server = slot.current
        if server is None:
            return PredictorState(name, "Creating", "starting", None, dep_name)
        alive = server.port if server.phase != EXITED else None
        if server.phase == EXITED:
            delay = BACKOFF_S[min(max(slot.restarts - 1, 0), len(BACKOFF_S) - 1)]
            reason = f"{server.reason}; restart {slot.restarts} after a {delay:.0f} s back-off"
            return PredictorState(name, "Failed", reason, None, dep_name)
        if server.phase == FAILED:
            return PredictorState(name, "Failed", server.reason, alive, dep_name)
        if slot.failed_update is not None:
            reason = f"update failed: {slot.failed_update[1]} (the previous spec still serves)"
            return PredictorState(name, "Failed", reason, alive, dep_name)
        if server.phase == READY:
            return PredictorState(name, "Available", "", alive, dep_name)
        return PredictorState(name, "Creating", server.reason, alive, dep_name)

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        slots = [s for key, s in sorted(self.slots.items()) if key[:2] == (namespace, name)]
        return seldon_status([self.predictor_state(s) for s in slots])

    async def report(self, sdeps: list[dict[str, Any]]) -> None:
        """Write each SeldonDeployment's status where it differs from the live one."""
        for sdep in sdeps:
            meta = sdep["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            desired = self.status(meta["namespace"], meta["name"])
            if not needs_patch(sdep.get("status") or {}, desired):
                continue
            try:
                await asyncio.to_thread(
                    self.cluster.patch_status,
                    SELDON_API,
                    SELDON_KIND,
                    meta["namespace"],
                    meta["name"],
                    desired,
                )
            except ApiError as exc:  # gone meanwhile, or a conflict: the next pass retries
                if exc.status != 404:
                    log.warning("status of %s/%s: %s", meta["namespace"], meta["name"], exc)
                continue
            log.info(
                "SeldonDeployment %s/%s: %s%s",
                meta["namespace"],
                meta["name"],
                desired["state"],
                f" ({desired['description']})" if desired.get("description") else "",
            )

    def endpoints(self) -> list[Endpoint]:
        """Every ready process, as the pod endpoints the ingress routes to."""
        return [
            slot.current.endpoint()
            for slot in self.slots.values()
            if slot.current is not None and slot.current.phase == READY
        ]

    def processes(self) -> list[dict[str, Any]]:
        """Each model-server process, for ``slipway dev status``."""
        rows = []
        for slot in self.slots.values():
            for server, role in ((slot.current, "serving"), (slot.next, "updating")):
                if server is None:
                    continue
                rows.append(
                    {
                        "namespace": server.spec.namespace,
                        "seldonDeployment": server.spec.deployment,
                        "predictor": server.spec.predictor,
                        "version": server.spec.labels.get("version", ""),
                        "port": server.port,
                        "pid": server.pid,
                        "phase": server.phase,
                        "reason": server.reason,
                        "role": role,
                        "log": str(server.log_path),
                    }
                )
        return rows

    async def close(self) -> None:
        """Stop every process and wait for them all."""
        for slot in self.slots.values():
            self._retire(slot.current)
            self._retire(slot.next)
        self.slots.clear()
        self.stop_retired()
        if self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)
