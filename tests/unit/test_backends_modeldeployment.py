"""ModelDeployment children rendered by the Seldon and Istio providers, against golden YAML
(regenerate with UPDATE_GOLDEN=1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.backends import istio, seldon
from slipway.builders.meta import Owner
from slipway.builders.placement import UnknownNodePool, resolve_pool
from slipway.builders.rollout import ModelVersion, Split
from slipway.config import OperatorConfig

GOLDEN = Path(__file__).parent / "golden"
STABLE = ModelVersion("s3://models/digits/1/model.onnx", "sha256:" + "ab" * 32)
CANDIDATE = ModelVersion("s3://models/digits/2/model.onnx", "sha256:" + "cd" * 32)
SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": {"uri": CANDIDATE.uri, "digest": CANDIDATE.digest},
        "server": {"batching": {"enabled": True, "maxBatchSize": 16, "windowMs": 3}},
        "minReplicas": 2,
        "maxReplicas": 4,
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        "placement": {"nodePool": "gpu", "gpus": 1},
    }
)


def check_golden(name: str, manifest: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump(manifest, sort_keys=False)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from {path}"


def test_seldon_deployment(owner: Owner, config: OperatorConfig) -> None:
    pool = resolve_pool(SPEC.placement, config.node_pools)
    manifest = seldon.build_seldon_deployment(owner, SPEC, STABLE, pool, config)
    check_golden("seldondeployment", manifest)
    pod = manifest["spec"]["predictors"][0]["componentSpecs"][0]
    labels = pod["metadata"]["labels"]
    assert labels["app"] == "digits" and labels["version"] == STABLE.version
    # The pods are what the traffic provider's Service selects (Seldon copies these labels onto
    # them, not the SeldonDeployment's own).
    selector = istio.build_service(owner, config)["spec"]["selector"]
    assert selector.items() <= labels.items()
    assert pod["spec"]["nodeSelector"] == {"slipway.dev/pool": "gpu"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}


def test_lineage_is_annotated_on_the_pods_and_read_back(
    owner: Owner, config: OperatorConfig
) -> None:
    lineage = (("datasetDigest", "sha256:" + "d" * 64), ("trainingJob", "digits-cnn"))
    version = ModelVersion(STABLE.uri, STABLE.digest, lineage=lineage)
    pool = resolve_pool(SPEC.placement, config.node_pools)
    manifest = seldon.build_seldon_deployment(owner, SPEC, version, pool, config)
    notes = manifest["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["annotations"]
    assert notes["lineage.slipway.dev/trainingJob"] == "digits-cnn"
    assert notes["lineage.slipway.dev/datasetDigest"] == "sha256:" + "d" * 64
    served = seldon.SeldonServing().served(manifest)
    assert served is not None and served.digest == STABLE.digest and served.lineage == lineage


def test_routing(owner: Owner, config: OperatorConfig) -> None:
    split = Split(STABLE, 90, CANDIDATE, 10)
    check_golden("service", istio.build_service(owner, config))
    check_golden("destinationrule", istio.build_destination_rule(owner, split, config))
    vs = istio.build_virtual_service(owner, split, config)
    check_golden("virtualservice", vs)
    weights = [r["weight"] for r in vs["spec"]["http"][0]["route"]]
    assert weights == [90, 10]


def test_every_child_is_owned_and_labelled(owner: Owner, config: OperatorConfig) -> None:
    split = Split(STABLE, 100, None, 0)
    children = [
        seldon.build_seldon_deployment(owner, SPEC, STABLE, None, config),
        istio.build_service(owner, config),
        istio.build_destination_rule(owner, split, config),
        istio.build_virtual_service(owner, split, config),
    ]
    for child in children:
        meta = child["metadata"]
        assert meta["ownerReferences"][0]["uid"] == owner.uid
        assert meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"]["slipway.dev/modeldeployment"] == "digits"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "slipway-operator"


def test_builders_are_deterministic(owner: Owner, config: OperatorConfig) -> None:
    first = seldon.build_seldon_deployment(owner, SPEC, STABLE, None, config)
    assert first == seldon.build_seldon_deployment(owner, SPEC, STABLE, None, config)


def test_unknown_pool_names_the_known_ones(config: OperatorConfig) -> None:
    spec = SPEC.model_copy(
        update={"placement": SPEC.placement.model_copy(update={"node_pool": "tpu"})}
    )
    with pytest.raises(UnknownNodePool, match=r"'tpu' is not a configured node pool \(gpu\)"):
        resolve_pool(spec.placement, config.node_pools)
