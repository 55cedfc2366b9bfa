"""The upstream third-party CRDs on the real API server, and Slipway's renderings under them.

The CRDs are the projects' own files at the versions pinned in tests/cluster/crds/pins.yaml
(``slipway.devcluster.thirdparty``). Each kind Slipway creates is sent with a server-side dry run
and strict field validation: the API server runs its full validation (structural schema, CEL
rules, defaulting) and stores nothing. A misspelt field must be rejected, which a schema that
accepted anything would not do. Katib is the exception and the tests say so: upstream publishes
its CRDs without a schema and validates in a webhook that does not run here.

Seldon's CRD is written here and leaves the pod specs inside ``componentSpecs`` unchecked, so each
rendered ``componentSpecs[].spec`` is also dry-run as a ``v1`` Pod: the API server's own PodSpec
validation checks what the Seldon schema cannot.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.api.v1alpha1.trainingjob import TrainingJobSpec
from slipway.backends import istio, seldon
from slipway.backends.pytorchjob import PyTorchJobTraining
from slipway.backends.storage import pvc_volumes
from slipway.backends.training import TrainingRequest
from slipway.backends.trainjob import TrainJobTraining
from slipway.builders.meta import Owner
from slipway.builders.placement import container_resources, pod_placement, resolve_pool
from slipway.builders.rollout import ModelVersion, Split
from slipway.config import OperatorConfig
from slipway.devcluster.thirdparty import PINS, load_pins, pinned_crds
from slipway.k8s import ApiError, Cluster
from slipway.k8s.resources import resource

ROOT = Path(__file__).resolve().parents[2]
CRD_API = "apiextensions.k8s.io/v1"
CONFIG = OperatorConfig.model_validate(
    {
        "nodePools": [
            {
                "name": "gpu",
                "nodeSelector": {"slipway.dev/pool": "gpu"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
            }
        ]
    }
)
STABLE = ModelVersion("s3://models/digits/1/model.onnx", "sha256:" + "ab" * 32)
CANDIDATE = ModelVersion("s3://models/digits/2/model.onnx", "sha256:" + "cd" * 32)


def dry_run(kube: Cluster, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create ``manifest`` with ``dryRun=All`` and ``fieldValidation=Strict``; returns what the
    server would store, or raises ApiError with the server's message."""
    meta = manifest["metadata"]
    if manifest["apiVersion"] == "v1" and manifest["kind"] == "Pod":
        path = f"/api/v1/namespaces/{meta['namespace']}/pods"  # no row in the operator's table
    else:
        path = resource(manifest["apiVersion"], manifest["kind"]).path(meta.get("namespace"))
    method, url, headers, body, _ = kube.api.param_serialize(
        "POST",
        path,
        query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=manifest,
        auth_settings=["BearerToken"],
    )
    try:
        response = kube.api.call_api(method, url, headers, body, _request_timeout=30)
        response.read()
    except ApiException as exc:
        raise ApiError(exc.status or 0, f"{exc.reason}: {exc.body}") from exc
    if not 200 <= response.status < 300:
        raise ApiError(response.status, response.data.decode(errors="replace"))
    stored: dict[str, Any] = json.loads(response.data)
    return stored


def in_namespace(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out["metadata"]["namespace"] = namespace
    return out


def md_owner(namespace: str) -> Owner:
    return Owner("slipway.dev/v1alpha1", "ModelDeployment", "digits", namespace, "uid-md-1")


def training_request(namespace: str) -> TrainingRequest:
    """A three-node GPU job with PVC data, built the way the TrainingJob reconciler builds it."""
    spec = TrainingJobSpec.model_validate(
        {
            "dataset": {"name": "digits", "version": "v1"},
            "workers": 3,
            "placement": {"nodePool": "gpu", "gpus": 2},
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
            "runPolicy": {"backoffLimit": 2, "activeDeadlineSeconds": 3600},
        }
    )
    pool = resolve_pool(spec.placement, CONFIG.node_pools)
    volumes, mounts = pvc_volumes("pvc://datasets/digits/v1", "pvc://models/digits/g2")
    return TrainingRequest(
        name="digits-mlp-g2",
        namespace=namespace,
        image=spec.trainer.image,
        args=["--dataset-uri=/mnt/pvc/datasets/digits/v1", "--epochs=3"],
        env={"SLIPWAY_SEED": "0"},
        workers=spec.workers,
        gpus=spec.placement.gpus,
        resources=container_resources(spec.resources, spec.placement, pool),
        placement=pod_placement(pool),
        run_policy=spec.run_policy,
        volumes=volumes,
        volume_mounts=mounts,
    )


def tj_owner(namespace: str) -> Owner:
    return Owner("slipway.dev/v1alpha1", "TrainingJob", "digits-mlp", namespace, "uid-tj-1")


def virtual_service(namespace: str) -> dict[str, Any]:
    split = Split(STABLE, 90, CANDIDATE, 10)
    return istio.build_virtual_service(md_owner(namespace), split, CONFIG)


def destination_rule(namespace: str) -> dict[str, Any]:
    split = Split(STABLE, 90, CANDIDATE, 10)
    return istio.build_destination_rule(md_owner(namespace), split, CONFIG)


def train_job(namespace: str) -> dict[str, Any]:
    rendered = TrainJobTraining().render(tj_owner(namespace), training_request(namespace))
    assert rendered is not None
    return rendered


def pytorch_job(namespace: str) -> dict[str, Any]:
    rendered = PyTorchJobTraining().render(tj_owner(namespace), training_request(namespace))
    assert rendered is not None
    return rendered


def experiment(namespace: str) -> dict[str, Any]:
    """A Katib Experiment whose trials are the TrainJob Slipway renders (Katib >= v0.19)."""
    trial = train_job(namespace)
    trial["metadata"] = {}
    trial["spec"]["trainer"]["args"] = [
        *trial["spec"]["trainer"]["args"],
        "--lr=${trialParameters.lr}",
    ]
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "digits-sweep", "namespace": namespace},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy", "goal": 0.99},
            "algorithm": {"algorithmName": "tpe"},
            "parallelTrialCount": 2,
            "maxTrialCount": 8,
            "maxFailedTrialCount": 2,
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "parameters": [
                {
                    "name": "lr",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.0001", "max": "0.1"},
                }
            ],
            "trialTemplate": {
                "primaryContainerName": "node",
                "trialParameters": [{"name": "lr", "reference": "lr"}],
                "trialSpec": trial,
                "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
                "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
            },
        },
    }


def misspell(path: list[str | int], wrong: str) -> Callable[[dict[str, Any]], str]:
    """Renames the last key of ``path`` to ``wrong`` in a manifest; returns ``wrong``."""

    def apply(manifest: dict[str, Any]) -> str:
        node: Any = manifest
        for step in path[:-1]:
            node = node[step]
        node[wrong] = node.pop(path[-1])
        return wrong

    return apply


WORKER_SPEC: list[str | int] = ["spec", "pytorchReplicaSpecs", "Worker", "template", "spec"]
# kind -> (Slipway's rendering, a misspelling of one of its fields)
STRUCTURAL = {
    "VirtualService": (
        virtual_service,
        misspell(["spec", "http", 0, "route", 0, "weight"], "wieght"),
    ),
    "DestinationRule": (destination_rule, misspell(["spec", "subsets"], "subset")),
    "TrainJob": (train_job, misspell(["spec", "trainer", "numNodes"], "numNode")),
    "PyTorchJob": (
        pytorch_job,
        misspell([*WORKER_SPEC, "containers", 0, "volumeMounts"], "volumeMount"),
    ),
}


def test_every_pinned_crd_is_upstreams_and_established(kube: Cluster) -> None:
    files = pinned_crds(ROOT)
    pinned_kinds = {kind for pin in load_pins((ROOT / PINS).read_text()) for kind in pin.kinds}
    installed = set()
    for file in files:
        upstream = json.loads(file.read_text())
        live = kube.get(CRD_API, "CustomResourceDefinition", None, upstream["metadata"]["name"])
        assert live is not None, f"{file.name} is not installed"
        conditions = {c["type"]: c["status"] for c in live["status"]["conditions"]}
        assert conditions.get("Established") == "True", (file.name, conditions)
        served = {v["name"]: v.get("schema") for v in live["spec"]["versions"]}
        assert served == {v["name"]: v.get("schema") for v in upstream["spec"]["versions"]}
        installed.add(live["spec"]["names"]["kind"])
    assert installed == pinned_kinds


@pytest.mark.parametrize("kind", sorted(STRUCTURAL))
def test_slipways_rendering_is_valid_and_a_misspelt_field_is_not(
    kube: Cluster, namespace: str, kind: str
) -> None:
    build, spoil = STRUCTURAL[kind]
    manifest = in_namespace(build(namespace), namespace)
    assert manifest["kind"] == kind
    stored = dry_run(kube, manifest)
    assert stored["metadata"]["namespace"] == namespace
    assert kube.get(manifest["apiVersion"], kind, namespace, manifest["metadata"]["name"]) is None

    wrong = spoil(manifest)
    with pytest.raises(ApiError) as rejected:
        dry_run(kube, manifest)
    assert wrong in str(rejected.value), str(rejected.value)


def test_a_mistyped_value_is_rejected_by_istios_schema(kube: Cluster, namespace: str) -> None:
    manifest = in_namespace(virtual_service(namespace), namespace)
    manifest["spec"]["http"][0]["route"][0]["weight"] = "ninety"
    with pytest.raises(ApiError, match="weight"):
        dry_run(kube, manifest)


def test_katibs_crd_has_no_schema_so_the_server_accepts_anything(
    kube: Cluster, namespace: str
) -> None:
    """Upstream Katib publishes its CRDs schemaless (its webhook, absent here, validates): the
    Experiment is accepted, and so is a misspelt one. The trial spec inside it is a TrainJob, so
    that part is checked under the Trainer's schema by dry-running it on its own."""
    manifest = experiment(namespace)
    assert dry_run(kube, manifest)["spec"]["maxTrialCount"] == 8
    trial = copy.deepcopy(manifest["spec"]["trialTemplate"]["trialSpec"])
    trial["metadata"] = {"name": "digits-sweep-trial", "namespace": namespace}
    dry_run(kube, trial)

    misspell(["spec", "maxTrialCount"], "maxTrialCuont")(manifest)
    assert dry_run(kube, manifest)["spec"]["maxTrialCuont"] == 8


def seldon_pods(namespace: str) -> list[dict[str, Any]]:
    """A v1 Pod for each componentSpec of the SeldonDeployment Slipway renders."""
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": STABLE.uri, "digest": STABLE.digest},
            "server": {"batching": {"enabled": True, "maxBatchSize": 16, "windowMs": 3}},
            "minReplicas": 2,
            "maxReplicas": 4,
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            "placement": {"nodePool": "gpu", "gpus": 1},
        }
    )
    pool = resolve_pool(spec.placement, CONFIG.node_pools)
    sdep = seldon.build_seldon_deployment(md_owner(namespace), spec, STABLE, pool, CONFIG)
    pods = []
    for predictor in sdep["spec"]["predictors"]:
        for number, component in enumerate(predictor["componentSpecs"]):
            labels = (component.get("metadata") or {}).get("labels") or {}
            name = f"{sdep['metadata']['name']}-{predictor['name']}-{number}"
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "spec": copy.deepcopy(component["spec"]),
                }
            )
    return pods


def test_seldon_pod_specs_pass_the_api_servers_pod_validation(
    kube: Cluster, namespace: str
) -> None:
    pods = seldon_pods(namespace)
    assert pods
    for pod in pods:
        stored = dry_run(kube, pod)
        container = stored["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert stored["spec"]["nodeSelector"] == {"slipway.dev/pool": "gpu"}

    # The same check fails on what only Pod validation catches (the Seldon schema passes it on).
    broken = copy.deepcopy(pods[0])
    broken["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(ApiError, match="containerPort"):
        dry_run(kube, broken)
