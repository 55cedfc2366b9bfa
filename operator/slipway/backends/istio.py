"""Traffic provider ``istio``: a Service, a DestinationRule and a VirtualService.

One Service selects the pods of every version of a ModelDeployment (by its ``app`` label); the
DestinationRule turns each live version into a subset selected by the ``version`` label; the
VirtualService splits requests between the subsets by weight. That is Istio's versioned-app
pattern, and the shape Kiali draws as one app with versions.

Progressive rollouts use two more VirtualService features: an A/B test puts a route with the
split's ``match`` first (matching requests go to the candidate, Istio taking the first route that
matches), and a shadow rollout adds ``mirror`` and ``mirrorPercentage`` to the stable route (Istio
sends the copy and discards its answer). A version kept after promotion (``previous``) keeps its
subset, so routing back to it needs no new deployment.
"""

from __future__ import annotations

from typing import Any

from slipway.builders.meta import Owner, app_label, label_value, metadata, short_name
from slipway.builders.rollout import ModelVersion, Split
from slipway.config import OperatorConfig

ISTIO_API = "networking.istio.io/v1"
COMPONENT = "model-server"


def service_host(owner: Owner, config: OperatorConfig) -> str:
    return f"{short_name(owner.name)}.{owner.namespace}.svc.{config.cluster_domain}"


def build_service(owner: Owner, config: OperatorConfig) -> dict[str, Any]:
    """The Service in front of every version's pods: the host the Istio routes address."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, short_name(owner.name), COMPONENT, app=app_label(owner)),
        "spec": {
            "selector": {"app": app_label(owner), owner.label_key: label_value(owner.name)},
            "ports": [
                {
                    "name": "http",
                    "port": config.model_server_port,
                    "targetPort": config.model_server_port,
                    "appProtocol": "http",
                }
            ],
        },
    }


def build_destination_rule(owner: Owner, split: Split, config: OperatorConfig) -> dict[str, Any]:
    """One subset per live version, selected by the ``version`` label."""
    versions = split.versions
    return {
        "apiVersion": ISTIO_API,
        "kind": "DestinationRule",
        "metadata": metadata(owner, short_name(owner.name), COMPONENT),
        "spec": {
            "host": service_host(owner, config),
            "subsets": [{"name": v.version, "labels": {"version": v.version}} for v in versions],
        },
    }


def build_virtual_service(owner: Owner, split: Split, config: OperatorConfig) -> dict[str, Any]:
    """Weighted routes to the version subsets (the weights always add up to 100), after an
    A/B test's match route, with a shadow rollout's mirror."""
    host = service_host(owner, config)

    def destination(version: ModelVersion) -> dict[str, Any]:
        return {
            "host": host,
            "subset": version.version,
            "port": {"number": config.model_server_port},
        }

    def route(version: ModelVersion, weight: int) -> dict[str, Any]:
        return {"destination": destination(version), "weight": weight}

    routes = [route(split.stable, split.stable_weight)]
    if split.candidate is not None:
        routes.append(route(split.candidate, split.candidate_weight))
    main: dict[str, Any] = {"name": "inference", "route": routes}
    http = [main]
    if split.candidate is not None and split.mirror > 0:
        main["mirror"] = destination(split.candidate)
        main["mirrorPercentage"] = {"value": split.mirror}
    if split.candidate is not None and split.match:
        ab = {"name": "ab-test", "match": list(split.match), "route": [route(split.candidate, 100)]}
        http = [ab, main]
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": metadata(owner, short_name(owner.name), COMPONENT),
        "spec": {"hosts": [host], "http": http},
    }


class IstioTraffic:
    """The ``istio`` traffic provider."""

    kinds: tuple[tuple[str, str], ...] = (
        ("v1", "Service"),
        (ISTIO_API, "DestinationRule"),
        (ISTIO_API, "VirtualService"),
    )

    def render(self, owner: Owner, split: Split, config: OperatorConfig) -> list[dict[str, Any]]:
        return [
            build_service(owner, config),
            build_destination_rule(owner, split, config),
            build_virtual_service(owner, split, config),
        ]

    def url(self, owner: Owner, config: OperatorConfig) -> str:
        host = service_host(owner, config)
        return f"http://{host}:{config.model_server_port}/v2/models/{app_label(owner)}"
