"""The status gauges: one set of series per object, replaced as its status changes, removed with
it; read back from prometheus_client's registry as a scrape would see them."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from slipway import statusmetrics


def md(stable: str, candidate: str | None, phase: str, rollout: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available"},
            {"type": "Degraded", "status": "False", "reason": "AsExpected"},
        ],
        "stable": {"version": stable, "weight": 100 if candidate is None else 90},
    }
    if candidate is not None:
        status["candidate"] = {"version": candidate, "weight": 10}
    if rollout is not None:
        status["rollout"] = {
            "strategy": "Canary",
            "candidate": candidate or stable,
            "phase": rollout,
        }
    return {
        "kind": "ModelDeployment",
        "metadata": {"namespace": "ml", "name": "digits"},
        "status": status,
    }


def value(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def test_series_follow_the_status_and_go_with_the_object() -> None:
    statusmetrics.observe(md("v1", "v2", "Progressing", "Progressing"))
    weight = "slipway_modeldeployment_traffic_weight"
    assert value(weight, namespace="ml", name="digits", version="v1", role="stable") == 90
    assert value(weight, namespace="ml", name="digits", version="v2", role="candidate") == 10
    ready = {"kind": "ModelDeployment", "namespace": "ml", "name": "digits", "type": "Ready"}
    assert value("slipway_object_condition", **ready, reason="Available") == 1
    degraded = {**ready, "type": "Degraded", "reason": "AsExpected"}
    assert value("slipway_object_condition", **degraded) == 0
    rollout = {"namespace": "ml", "name": "digits", "strategy": "Canary", "candidate": "v2"}
    assert value("slipway_modeldeployment_rollout_phase", **rollout, phase="Progressing") == 1

    statusmetrics.observe(md("v2", None, "Ready", "Succeeded"))  # promoted
    assert value(weight, namespace="ml", name="digits", version="v2", role="stable") == 100
    assert value(weight, namespace="ml", name="digits", version="v1", role="stable") is None
    assert value(weight, namespace="ml", name="digits", version="v2", role="candidate") is None
    assert value("slipway_modeldeployment_rollout_phase", **rollout, phase="Progressing") is None
    assert value("slipway_modeldeployment_rollout_phase", **rollout, phase="Succeeded") == 1
    phase = {"kind": "ModelDeployment", "namespace": "ml", "name": "digits"}
    assert value("slipway_object_phase", **phase, phase="Ready") == 1
    assert value("slipway_object_phase", **phase, phase="Progressing") is None

    statusmetrics.forget(md("v2", None, "Ready", "Succeeded"))
    assert value(weight, namespace="ml", name="digits", version="v2", role="stable") is None
    assert value("slipway_object_phase", **phase, phase="Ready") is None


def test_an_object_without_status_exports_nothing() -> None:
    body = {"kind": "Dataset", "metadata": {"namespace": "ml", "name": "new"}}
    assert statusmetrics.series_of(body) == {}
