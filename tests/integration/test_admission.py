"""Invalid resources are rejected by the real API server at admission (schema + CEL), with a
message that names the field. Nothing is created, so nothing is half-created.

Requests are sent as kubectl sends them: strict field validation, so an unknown field is an error
rather than silently pruned.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.k8s import ApiError, Cluster, contains

SAMPLES = {
    yaml.safe_load(p.read_text())["kind"]: yaml.safe_load(p.read_text())
    for p in (Path(__file__).resolve().parents[2] / "crds" / "samples").glob("*.yaml")
}


def variant(kind: str, **spec_changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SAMPLES[kind])
    for dotted, value in spec_changes.items():
        node = doc["spec"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(leaf)
        else:
            node[leaf] = value
    return doc


DELETE = object()
DIGEST = "sha256:" + "0" * 64
SWEEP_PARAM = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": 0.1, "max": 0.01}}

INVALID = {
    "md-two-model-sources": (
        variant(
            "ModelDeployment",
            model={"uri": "s3://b/m.onnx", "digest": DIGEST, "trainingJobRef": {"name": "tj"}},
        ),
        "set exactly one of spec.model.uri, spec.model.trainingJobRef, spec.model.tuningSweepRef",
    ),
    "md-env-sets-the-model-digest": (
        variant("ModelDeployment", server__env={"SLIPWAY_MODEL_SHA256": DIGEST}),
        "spec.server.env may not set the variables the operator owns",
    ),
    "md-uri-without-digest": (
        variant("ModelDeployment", model__digest=DELETE),
        "spec.model.digest is required with spec.model.uri",
    ),
    "md-malformed-digest": (
        variant("ModelDeployment", model__digest="sha256:xyz"),
        "spec.model.digest",
    ),
    "md-malformed-uri": (
        variant("ModelDeployment", model__uri="ftp://models/m.onnx"),
        "spec.model.uri",
    ),
    "md-min-above-max-replicas": (
        variant("ModelDeployment", minReplicas=3, maxReplicas=2),
        "spec.minReplicas must be <= spec.maxReplicas",
    ),
    "md-weights-descending": (
        variant(
            "ModelDeployment", rollout={"strategy": "Canary", "analysis": {"stepWeights": [50, 20]}}
        ),
        "analysis.stepWeights must be strictly ascending",
    ),
    "md-weights-above-max": (
        variant(
            "ModelDeployment",
            rollout={"strategy": "Canary", "analysis": {"stepWeights": [10, 80], "maxWeight": 50}},
        ),
        "analysis.stepWeights must not exceed analysis.maxWeight",
    ),
    "md-weight-over-100": (
        variant("ModelDeployment", rollout={"candidateWeight": 150}),
        "spec.rollout.candidateWeight",
    ),
    "md-canary-without-analysis": (
        variant("ModelDeployment", rollout={"strategy": "Canary"}),
        "spec.rollout.analysis is required unless strategy is Static",
    ),
    "md-unknown-field": (
        variant("ModelDeployment", replicaz=2),
        "replicaz",
    ),
    "sweep-min-above-max": (
        variant("TuningSweep", parameters=[SWEEP_PARAM]),
        "int and double parameters need feasibleSpace.min <= feasibleSpace.max",
    ),
    "sweep-categorical-without-list": (
        variant(
            "TuningSweep",
            parameters=[{"name": "opt", "parameterType": "categorical", "feasibleSpace": {}}],
        ),
        "categorical and discrete parameters need a non-empty feasibleSpace.list",
    ),
    "sweep-parallel-above-max": (
        variant("TuningSweep", parallelTrialCount=5, maxTrialCount=2),
        "spec.parallelTrialCount must be <= spec.maxTrialCount",
    ),
    "sweep-bad-objective": (
        variant("TuningSweep", objective={"type": "best", "objectiveMetricName": "accuracy"}),
        "spec.objective.type",
    ),
    "tj-version-and-digest": (
        variant("TrainingJob", dataset={"name": "iris", "version": "v1", "digest": DIGEST}),
        "set exactly one of spec.dataset.version and spec.dataset.digest",
    ),
    "tj-zero-workers": (
        variant("TrainingJob", workers=0),
        "spec.workers",
    ),
    "tj-unknown-optimizer": (
        variant("TrainingJob", trainer={"optimizer": "adagrad"}),
        "spec.trainer.optimizer",
    ),
    "ds-bad-source": (
        variant("Dataset", source="digits"),
        "spec.source",
    ),
    "ds-labels-without-column": (
        variant("Dataset", validation={"allowedLabels": ["a"]}),
        "spec.validation.labelColumn is required with spec.validation.allowedLabels",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_manifest_is_rejected_naming_the_field(
    kube: Cluster, namespace: str, case: str
) -> None:
    manifest, expected = INVALID[case]
    manifest["metadata"]["namespace"] = namespace
    with pytest.raises(ApiError) as err:
        kube.create(manifest)  # what `kubectl create` and `kubectl apply` send
    assert err.value.status in (400, 422), err.value  # 400: unknown field, 422: invalid value
    assert expected in str(err.value)
    meta = manifest["metadata"]
    assert kube.get(manifest["apiVersion"], manifest["kind"], namespace, meta["name"]) is None


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_samples_are_accepted_and_defaulted(kube: Cluster, namespace: str, kind: str) -> None:
    manifest = copy.deepcopy(SAMPLES[kind])
    manifest["metadata"]["namespace"] = namespace
    live, written = kube.apply(manifest)
    assert written
    assert contains(live["spec"], manifest["spec"])
    if kind == "ModelDeployment":  # structural defaults filled in by the API server
        assert live["spec"]["rollout"] == {"strategy": "Static", "candidateWeight": 10}
        assert live["spec"]["placement"] == {"gpus": 0}
