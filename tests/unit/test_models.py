"""The pydantic API models: wire names, defaults, and refusal of unknown fields."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from slipway.api.v1alpha1 import KINDS
from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPECS = {k.info.kind: k.spec for k in KINDS}


@pytest.mark.parametrize(
    "path", sorted(SAMPLES.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name
)
def test_samples_and_examples_parse(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    SPECS[doc["kind"]].model_validate(doc["spec"])


def test_every_kind_has_a_sample() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in SAMPLES.glob("*.yaml")}
    assert kinds == set(SPECS)


def test_unknown_fields_are_refused_with_their_name() -> None:
    with pytest.raises(ValidationError, match="replicaz"):
        ModelDeploymentSpec.model_validate(
            {"model": {"uri": "s3://b/m.onnx", "digest": "sha256:" + "a" * 64}, "replicaz": 2}
        )


def test_round_trip_uses_camel_case_and_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"uri": "s3://b/m.onnx", "digest": "sha256:" + "a" * 64}}
    )
    wire = spec.to_api()
    assert wire["minReplicas"] == 1
    assert wire["rollout"] == {"strategy": "Static", "candidateWeight": 10}
    assert ModelDeploymentSpec.model_validate(wire) == spec
