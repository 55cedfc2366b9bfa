"""Serving provider ``seldon``: one SeldonDeployment (machinelearning.seldon.io/v1) per version.

Each runs Slipway's model server as a Seldon Core v1 custom server speaking the V2 protocol on the
configured port, with V2 health probes, under the restricted Pod Security profile
(``builders/security.py``). Its pods carry Istio's ``app`` (the ModelDeployment) and
``version`` labels, which the traffic provider's subsets select and Kiali draws, plus
``app.kubernetes.io/part-of=slipway`` and ``app.kubernetes.io/component=model-server``, which the
chart's PodMonitor selects; their annotations name the model a version serves (URI and digest)
and its lineage (``lineage.slipway.dev/<key>``: the TrainingJob or TuningSweep and trial, the run,
the dataset and its digest), so Kiali's workload panel shows where a version came from. Seldon
reports a deployment's state in ``status.state``: Creating, Available or Failed.
"""

from __future__ import annotations

from typing import Any

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.builders.meta import PART_OF, Owner, app_label, label_value, metadata, short_name
from slipway.builders.placement import container_resources, pod_placement
from slipway.builders.rollout import ModelVersion, version_lineage
from slipway.builders.security import (
    DEFAULT_REQUESTS,
    container_security_context,
    pod_security_context,
    scratch_mount,
    scratch_volume,
)
from slipway.config import NodePool, OperatorConfig

from .serving import VersionState

SELDON_API = "machinelearning.seldon.io/v1"
COMPONENT = "model-server"
SHUTDOWN_DELAY_S = 5  # keep serving (not ready) while endpoints drop the pod
DRAIN_TIMEOUT_S = 30  # then finish in-flight requests
PREDICTOR = "default"
LINEAGE_PREFIX = "lineage.slipway.dev/"  # + a VERSION_LINEAGE key, e.g. trainingJob
# SeldonDeployment names leave room for the objects Seldon derives from them
# (<sdep>-<predictor>-<n>-<container>), which must stay valid names too.
SELDON_NAME_LIMIT = 40


def seldon_name(owner: Owner, version: ModelVersion) -> str:
    return short_name(owner.name, version.version, limit=SELDON_NAME_LIMIT)


def _env(
    spec: ModelDeploymentSpec, owner: Owner, version: ModelVersion, port: int
) -> list[dict[str, str]]:
    env = {
        "SLIPWAY_MODEL_NAME": app_label(owner),
        "SLIPWAY_MODEL_VERSION": version.version,
        "SLIPWAY_MODEL_URI": version.uri,
        "SLIPWAY_MODEL_SHA256": version.digest,
        "SLIPWAY_PORT": str(port),
        "SLIPWAY_SHUTDOWN_DELAY_S": str(SHUTDOWN_DELAY_S),
        "SLIPWAY_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S),
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


def _probe(path: str, period: int, failures: int = 3) -> dict[str, Any]:
    # A 2 s timeout, not Kubernetes' 1 s: a saturated CPU must not take a busy replica out.
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_seldon_deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    version: ModelVersion,
    pool: NodePool | None,
    config: OperatorConfig,
) -> dict[str, Any]:
    """The SeldonDeployment serving one model version."""
    # Istio's app/version (subsets, Kiali) and the owner's label, which the traffic provider's
    # Service selects: Seldon puts these labels on the pods, not the SeldonDeployment's own.
    pod_labels = {
        "app": app_label(owner),
        "version": version.version,
        owner.label_key: label_value(owner.name),
    }
    container: dict[str, Any] = {
        # Seldon routes /v2/models/<graph node>/ to the container of that name, so the node, the
        # container and the served model share one name: the ModelDeployment's app label.
        "name": app_label(owner),
        "image": spec.server.image,
        "env": _env(spec, owner, version, config.model_server_port),
        "ports": [{"name": "http", "containerPort": config.model_server_port}],
        # Fetching a large model from object storage can take minutes: the startup probe holds
        # the liveness probe off for up to 5 min. Ready means loaded, verified and warmed up.
        "startupProbe": _probe("/v2/health/live", 2, failures=150),
        "readinessProbe": _probe("/v2/health/ready", 5),
        "livenessProbe": _probe("/v2/health/live", 10),
        "securityContext": container_security_context(),
        "volumeMounts": [scratch_mount()],
        "resources": container_resources(spec.resources, spec.placement, pool, DEFAULT_REQUESTS),
    }
    if spec.server.env_secret_ref_name:
        # Storage credentials come from a Secret, never as literal values in the manifest.
        container["envFrom"] = [{"secretRef": {"name": spec.server.env_secret_ref_name}}]
    predictor: dict[str, Any] = {
        "name": PREDICTOR,
        "replicas": spec.min_replicas,
        "labels": dict(pod_labels),
        "componentSpecs": [
            {
                "metadata": {
                    "labels": {
                        **pod_labels,
                        "app.kubernetes.io/part-of": PART_OF,
                        "app.kubernetes.io/component": COMPONENT,
                    },
                    # per version and fixed for its lifetime: never a reason to restart its pods
                    "annotations": {
                        "slipway.dev/model-uri": version.uri,
                        "slipway.dev/model-digest": version.digest,
                        **{f"{LINEAGE_PREFIX}{key}": value for key, value in version.lineage},
                    },
                },
                "spec": {
                    "containers": [container],
                    "securityContext": pod_security_context(),
                    "volumes": [scratch_volume()],
                    "terminationGracePeriodSeconds": SHUTDOWN_DELAY_S + DRAIN_TIMEOUT_S + 10,
                    **pod_placement(pool),
                },
            }
        ],
        "graph": {
            "name": app_label(owner),  # = the container's name (see above)
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
            "name": app_label(owner),
            "protocol": "v2",
            "predictors": [predictor],
        },
    }


class SeldonServing:
    """The ``seldon`` serving provider."""

    api_version = SELDON_API
    kind = "SeldonDeployment"

    def name(self, owner: Owner, version: ModelVersion) -> str:
        return seldon_name(owner, version)

    def render(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        version: ModelVersion,
        pool: NodePool | None,
        config: OperatorConfig,
    ) -> dict[str, Any] | None:
        return build_seldon_deployment(owner, spec, version, pool, config)

    def served(self, live: dict[str, Any]) -> ModelVersion | None:
        """The version a SeldonDeployment serves, from its pod template's annotations."""
        predictors = (live.get("spec") or {}).get("predictors") or [{}]
        component = (predictors[0].get("componentSpecs") or [{}])[0]
        meta = component.get("metadata") or {}
        notes, labels = meta.get("annotations") or {}, meta.get("labels") or {}
        uri, digest = notes.get("slipway.dev/model-uri"), notes.get("slipway.dev/model-digest")
        if not uri or not digest:
            return None
        lineage = {k.removeprefix(LINEAGE_PREFIX): v for k, v in notes.items()}
        return ModelVersion(
            uri, digest, id=labels.get("version", ""), lineage=version_lineage(lineage)
        )

    def observe(self, live: dict[str, Any] | None) -> VersionState:
        status = (live or {}).get("status") or {}
        state = str(status.get("state") or "Creating")
        detail = str(status.get("description") or state)
        return VersionState(ready=state == "Available", failed=state == "Failed", detail=detail)
