"""Prometheus gauges of each Slipway object's status, as kube-state-metrics reports a Pod's.

Dashboards and alerts need what only the status says: is a ModelDeployment Ready, which versions
take how much traffic, where its rollout stands, did a TrainingJob fail. The operator sees every
object's status through its watches anyway, so it exports them itself (kube-state-metrics'
custom-resource mode would need a second deployment and a configuration to keep in step):

- ``slipway_object_condition{kind,namespace,name,type,reason}``: 1 while the condition is True,
  0 while it is False or Unknown;
- ``slipway_object_phase{kind,namespace,name,phase}``: 1, for the current phase only;
- ``slipway_modeldeployment_traffic_weight{namespace,name,version,role}``: percent of requests
  each live version gets (role ``stable`` or ``candidate``);
- ``slipway_modeldeployment_rollout_phase{namespace,name,strategy,candidate,phase}``: 1, for the
  phase of the last Canary, ABTest or Shadow rollout (Waiting ... Succeeded, Failed).

``observe`` replaces every series of one object from its body (a series whose labels changed is
removed, not left behind at its last value); ``forget`` removes them when the object is deleted.
Only the replica that is handling events reports, so replicas never export the same series twice.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import Gauge

CONDITION = Gauge(
    "slipway_object_condition",
    "1 while the object's condition is True, 0 while it is False or Unknown.",
    ["kind", "namespace", "name", "type", "reason"],
)
PHASE = Gauge(
    "slipway_object_phase",
    "1 for the object's current status.phase.",
    ["kind", "namespace", "name", "phase"],
)
WEIGHT = Gauge(
    "slipway_modeldeployment_traffic_weight",
    "Percent of a ModelDeployment's requests each live version receives.",
    ["namespace", "name", "version", "role"],
)
ROLLOUT_PHASE = Gauge(
    "slipway_modeldeployment_rollout_phase",
    "1 for the phase of a ModelDeployment's last Canary, ABTest or Shadow rollout.",
    ["namespace", "name", "strategy", "candidate", "phase"],
)

Series = tuple[Gauge, tuple[str, ...]]
_exported: dict[tuple[str, str, str], dict[Series, float]] = {}
_lock = threading.Lock()


def series_of(body: dict[str, Any]) -> dict[Series, float]:
    """The series (gauge, label values) and values that describe one object's status."""
    kind = str(body.get("kind") or "")
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    status = body.get("status") or {}
    out: dict[Series, float] = {}
    for condition in status.get("conditions") or []:
        labels = (kind, namespace, name, str(condition.get("type")), str(condition.get("reason")))
        out[(CONDITION, labels)] = 1.0 if condition.get("status") == "True" else 0.0
    if status.get("phase"):
        out[(PHASE, (kind, namespace, name, str(status["phase"])))] = 1.0
    if kind == "ModelDeployment":
        for role in ("stable", "candidate"):
            version = status.get(role) or {}
            if version.get("version"):
                weight = float(version.get("weight") or 0)
                out[(WEIGHT, (namespace, name, str(version["version"]), role))] = weight
        rollout = status.get("rollout") or {}
        if rollout.get("phase"):
            strategy, candidate = str(rollout.get("strategy")), str(rollout.get("candidate"))
            phase = str(rollout["phase"])
            out[(ROLLOUT_PHASE, (namespace, name, strategy, candidate, phase))] = 1.0
    return out


def _key(body: dict[str, Any]) -> tuple[str, str, str]:
    meta = body.get("metadata") or {}
    return (str(body.get("kind")), str(meta.get("namespace")), str(meta.get("name")))


def observe(body: dict[str, Any]) -> None:
    """Export the object's status, replacing what was exported for it before."""
    new = series_of(body)
    with _lock:
        old = _exported.get(_key(body), {})
        for gauge, labels in old.keys() - new.keys():
            gauge.remove(*labels)
        for (gauge, labels), value in new.items():
            gauge.labels(*labels).set(value)
        _exported[_key(body)] = new


def forget(body: dict[str, Any]) -> None:
    """Remove every series of a deleted object."""
    with _lock:
        for gauge, labels in _exported.pop(_key(body), {}):
            gauge.remove(*labels)
