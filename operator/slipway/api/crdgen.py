"""Generate apiextensions.k8s.io/v1 CRDs from the pydantic API models.

Kubernetes wants structural schemas: no ``$ref`` (definitions are inlined), no ``anyOf`` with
``null`` for optional fields (the field is left out of ``required``), no ``title``. Everything else
pydantic emits (types, bounds, patterns, enums, defaults, descriptions, CEL rules from ``cel()``)
maps one to one; nested objects declare ``default: {}`` so the API server fills in their defaults
and CEL rules can rely on them. The output is deterministic: a test regenerates it and compares.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from .v1alpha1 import KINDS, Kind

_DROP = {"title"}
_EXCLUSIVE = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}
_KEEP_AS_IS = {"x-kubernetes-validations", "enum", "required"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve ``$ref``s, collapse ``anyOf: [X, null]`` to X, and drop titles and defaults."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
        return {**target, **_inline({k: v for k, v in node.items() if k != "$ref"}, defs)}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']} in a structural schema")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        # The field's own description wins over the referenced type's.
        return {**_inline(options[0], defs), **_inline(rest, defs)}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs" or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and value is False:
            continue  # extra="forbid": unknown fields are pruned or refused by strict validation
        if key == "properties":
            out[key] = {name: _inline(prop, defs) for name, prop in value.items()}
        elif key in _KEEP_AS_IS or key == "default":
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key in _EXCLUSIVE and not isinstance(value, bool):
            # JSON Schema's numeric bound -> OpenAPI v3.0's bound plus a boolean flag
            out[_EXCLUSIVE[key]] = value
            out[key] = True
        else:
            out[key] = _inline(value, defs)
    if out.get("type") == "number" and "format" not in out:
        out["format"] = "double"
    return out


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI v3 schema of a model, in the structural form the API server accepts."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _inline(raw, raw.get("$defs", {}))  # type: ignore[no-any-return]


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    info = kind.info
    spec_schema = schema_of(kind.spec)
    status_schema = schema_of(kind.status)
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in info.columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "slipway"},
        },
        "spec": {
            "group": info.group,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": info.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": "Versioned schema of this object.",
                                },
                                "kind": {"type": "string", "description": "Kind of this object."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated sub-schemas out in full instead of as YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(kind: Kind) -> str:
    """The CRD as the YAML text written to ``crds/``."""
    header = "# Generated by `slipway crds` from operator/slipway/api. Do not edit.\n"
    body = yaml.dump(crd(kind), Dumper=_NoAliasDumper, sort_keys=False, width=100)
    return header + body


def generate() -> dict[str, str]:
    """File name -> YAML text for every kind, plus kopf's peering CRDs."""
    crds = {f"{kind.info.group}_{kind.info.plural}.yaml": render(kind) for kind in KINDS}
    return crds | peering_crds()


def peering_crds() -> dict[str, str]:
    """The CRDs kopf's peering uses to keep two operator replicas from both acting.

    Each running operator records itself (with a priority and a lease) in a ClusterKopfPeering
    object; a replica that sees a peer of higher priority pauses.
    """
    out = {}
    for kind, scope in (("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")):
        plural = kind.lower() + "s"
        free_form = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        doc = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": f"{plural}.kopf.dev",
                "labels": {"app.kubernetes.io/part-of": "slipway"},
            },
            "spec": {
                "group": "kopf.dev",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                "scope": scope,
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "description": "Operator replicas taking part in kopf peering.",
                                "properties": {"spec": free_form, "status": free_form},
                            }
                        },
                    }
                ],
            },
        }
        header = "# Generated by `slipway crds`: kopf's peering API. Do not edit.\n"
        body = yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False, width=100)
        out[f"kopf.dev_{plural}.yaml"] = header + body
    return out
