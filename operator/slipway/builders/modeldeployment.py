"""Children of a ModelDeployment: SeldonDeployments, a Service, a DestinationRule, a VirtualService.

One SeldonDeployment per live model version runs Slipway's model server as a Seldon custom server
speaking the V2 protocol. Its pods carry Istio's ``app`` (the deployment) and ``version`` labels;
one Service selects the pods of every version, the DestinationRule turns each version into a
subset, and the VirtualService splits traffic between the subsets. That is the versioned-app
shape Kiali draws.
"""

from __future__ import annotations

from typing import Any

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.config import NodePool, OperatorConfig

from .meta import Owner, label_value, metadata, short_name
from .placement import container_resources, pod_placement
from .rollout import ModelVersion, Split

SELDON_API = "machinelearning.seldon.io/v1"
ISTIO_API = "networking.istio.io/v1"
COMPONENT = "model-server"
CONTAINER = "model-server"
PREDICTOR = "default"
# SeldonDeployment names leave room for the objects Seldon derives from them
# (<sdep>-<predictor>-<n>-<container>), which must stay valid names too.
SELDON_NAME_LIMIT = 40


def app_label(owner: Owner) -> str:
    """The Istio/Kiali ``app`` label shared by every version of one ModelDeployment."""
    return label_value(owner.name)


def seldon_name(owner: Owner, version: ModelVersion) -> str:
    return short_name(owner.name, version.version, limit=SELDON_NAME_LIMIT)


def service_host(owner: Owner, config: OperatorConfig) -> str:
    return f"{short_name(owner.name)}.{owner.namespace}.svc.{config.cluster_domain}"


def _env(spec: ModelDeploymentSpec, owner: Owner, version: ModelVersion) -> list[dict[str, str]]:
    env = {
        "SLIPWAY_MODEL_NAME": label_value(owner.name),
        "SLIPWAY_MODEL_VERSION": version.version,
        "SLIPWAY_MODEL_URI": version.uri,
        "SLIPWAY_MODEL_SHA256": version.digest,
    }
    batching = spec.server.batching
    if batching is not None and batching.enabled:
        env |= {
            "SLIPWAY_BATCHING": "true",
            "SLIPWAY_MAX_BATCH_SIZE": str(batching.max_batch_size),
            "SLIPWAY_BATCH_WINDOW_MS": str(batching.window_ms),
        }
    env |= spec.server.env or {}
    return [{"name": k, "value": v} for k, v in env.items()]


def _probe(path: str, config: OperatorConfig, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": config.model_server_port},
        "periodSeconds": period,
        "failureThreshold": 3,
    }


def build_seldon_deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    version: ModelVersion,
    pool: NodePool | None,
    config: OperatorConfig,
) -> dict[str, Any]:
    """The SeldonDeployment serving one model version."""
    pod_labels = {"app": app_label(owner), "version": version.version}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.server.image,
        "env": _env(spec, owner, version),
        "ports": [{"name": "http", "containerPort": config.model_server_port}],
        "readinessProbe": _probe("/v2/health/ready", config, 5),
        "livenessProbe": _probe("/v2/health/live", config, 10),
    }
    resources = container_resources(spec.resources, spec.placement, pool)
    if resources:
        container["resources"] = resources
    predictor: dict[str, Any] = {
        "name": PREDICTOR,
        "replicas": spec.min_replicas,
        "labels": pod_labels,
        "componentSpecs": [
            {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [container], **pod_placement(pool)},
            }
        ],
        "graph": {
            "name": CONTAINER,
            "type": "MODEL",
            "endpoint": {"type": "REST", "httpPort": config.model_server_port},
        },
    }
    if spec.max_replicas > spec.min_replicas:
        predictor["componentSpecs"][0]["hpaSpec"] = {
            "minReplicas": max(spec.min_replicas, 1),
            "maxReplicas": spec.max_replicas,
        }
    return {
        "apiVersion": SELDON_API,
        "kind": "SeldonDeployment",
        "metadata": metadata(owner, seldon_name(owner, version), COMPONENT, **pod_labels),
        "spec": {
            "name": label_value(owner.name),
            "protocol": "v2",
            "predictors": [predictor],
        },
    }


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
    versions = [split.stable] + ([split.candidate] if split.candidate else [])
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
    """Weighted routes to the version subsets; the weights always add up to 100."""
    host = service_host(owner, config)

    def route(version: ModelVersion, weight: int) -> dict[str, Any]:
        return {
            "destination": {
                "host": host,
                "subset": version.version,
                "port": {"number": config.model_server_port},
            },
            "weight": weight,
        }

    routes = [route(split.stable, split.stable_weight)]
    if split.candidate is not None:
        routes.append(route(split.candidate, split.candidate_weight))
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": metadata(owner, short_name(owner.name), COMPONENT),
        "spec": {"hosts": [host], "http": [{"name": "inference", "route": routes}]},
    }
