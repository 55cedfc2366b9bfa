"""Providers for the systems Slipway drives, each behind a small Protocol.

One Protocol per concern (``serving``, ``traffic``; pipelines, training and tuning follow the same
pattern), one module per provider (``seldon``, ``istio``) and a no-op provider for each, picked by
name from the operator configuration. Providers only render manifests and read their children's
status: they never call the API server; the reconciler applies what they render.
"""

from __future__ import annotations

from .istio import IstioTraffic
from .noop import NoServing, NoTraffic
from .seldon import SeldonServing
from .serving import ServingBackend, VersionState
from .traffic import TrafficBackend

SERVING: dict[str, ServingBackend] = {"seldon": SeldonServing(), "none": NoServing()}
TRAFFIC: dict[str, TrafficBackend] = {"istio": IstioTraffic(), "none": NoTraffic()}


def serving_backend(name: str) -> ServingBackend:
    return SERVING[name]


def traffic_backend(name: str) -> TrafficBackend:
    return TRAFFIC[name]


__all__ = [
    "SERVING",
    "TRAFFIC",
    "ServingBackend",
    "TrafficBackend",
    "VersionState",
    "serving_backend",
    "traffic_backend",
]
