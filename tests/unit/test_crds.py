"""CRD generation: the files in crds/ match the models, and every schema is one Kubernetes takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.api import crdgen
from slipway.api.v1alpha1 import KINDS

ROOT = Path(__file__).resolve().parents[2]


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, prop in (schema.get("properties") or {}).items():
        out += walk(prop, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        out += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += walk(schema["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("folder", ["crds", "charts/slipway/crds"])
def test_generated_files_match_the_models(folder: str) -> None:
    generated = crdgen.generate()
    on_disk = {p.name: p.read_text() for p in (ROOT / folder).glob("*.yaml")}
    assert on_disk == generated, f"{folder} is stale: run `make generate`"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.info.kind)
def test_schema_is_structural_and_documented(kind: Any) -> None:
    schema = crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "title:", "$defs"):
        assert forbidden not in text
    undocumented = [
        path
        for path, node in walk(schema["properties"]["spec"], ".spec")
        + walk(schema["properties"]["status"], ".status")
        if path and not path.endswith(("[]", "{}")) and "description" not in node
    ]
    assert undocumented == []
    for path, node in walk(schema):
        assert "type" in node or "x-kubernetes-preserve-unknown-fields" in node, path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.info.kind)
def test_names_columns_and_subresources(kind: Any) -> None:
    crd = crdgen.crd(kind)
    names = crd["spec"]["names"]
    assert names["categories"] == ["slipway"]
    assert names["shortNames"] == list(kind.info.short_names)
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Ready" and "Phase" in columns and columns[-1] == "Age"


def test_short_names_are_the_documented_ones() -> None:
    assert sorted(n for k in KINDS for n in k.info.short_names) == ["ds", "md", "sweep", "tj"]


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    status = crdgen.schema_of(KINDS[0].status)
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_cel_rules_reach_the_schema() -> None:
    spec = crdgen.schema_of(KINDS[3].spec)
    rules = [v["rule"] for v in spec["properties"]["model"]["x-kubernetes-validations"]]
    assert any("trainingJobRef" in r for r in rules)
    weights = spec["properties"]["rollout"]["properties"]["analysis"]
    assert any("isSorted" in v["rule"] for v in weights["x-kubernetes-validations"])


def test_exclusive_bounds_use_openapi_v3_0_booleans() -> None:
    trainer = crdgen.schema_of(KINDS[1].spec)["properties"]["trainer"]["properties"]
    assert trainer["learningRate"]["minimum"] == 0
    assert trainer["learningRate"]["exclusiveMinimum"] is True
