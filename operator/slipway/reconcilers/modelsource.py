"""Resolve a ModelDeployment's model source to a concrete URI and digest.

A URI with its digest is used as given. A TrainingJob or TuningSweep reference is followed to the
model that object exported; when that object does not exist or has not exported a model yet, the
answer is a Verdict saying so, with the exact reason and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from slipway.api.v1alpha1 import modeldeployment as md
from slipway.api.v1alpha1 import trainingjob as tj
from slipway.api.v1alpha1 import tuningsweep as ts
from slipway.api.v1alpha1.common import API_VERSION, DIGEST
from slipway.builders.rollout import ModelVersion, version_lineage

from .base import Context
from .conditions import Verdict

_URI = re.compile(md.URI_PATTERN)
_DIGEST = re.compile(DIGEST)


@dataclass(frozen=True)
class Resolved:
    """The model to serve and where it came from (for the lineage block)."""

    model: ModelVersion
    lineage: dict[str, str] = field(default_factory=dict)


def _problem(reason: str, message: str) -> Verdict:
    return Verdict("Degraded", False, reason, message, degraded=True)


def _checked(uri: object, digest: object, origin: str) -> ModelVersion | Verdict:
    if not isinstance(uri, str) or not _URI.match(uri):
        return _problem(
            "InvalidModelURI",
            f"{origin} gives model URI {uri!r}, which is not an s3://, gs://, https://, file:// "
            "or pvc:// URI",
        )
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        return _problem(
            "InvalidModelDigest", f"{origin} gives model digest {digest!r}; expected sha256:<hex>"
        )
    return ModelVersion(uri=uri, digest=digest)


def _model_of_training_job(status: dict[str, Any]) -> dict[str, Any] | None:
    model = status.get("model") or {}
    return {"uri": model.get("uri"), "digest": model.get("digest")} if model else None


def _model_of_tuning_sweep(status: dict[str, Any]) -> dict[str, Any] | None:
    best = status.get("bestTrial") or {}
    if not best.get("modelUri"):
        return None
    return {"uri": best["modelUri"], "digest": best.get("modelDigest"), "trial": best.get("name")}


# kind -> (spec.model field naming it, lineage key, how to find its model, what "not yet" means)
_SOURCES: dict[str, tuple[str, str, Callable[[dict[str, Any]], dict[str, Any] | None], str]] = {
    tj.INFO.kind: (
        "trainingJobRef",
        "trainingJob",
        _model_of_training_job,
        "has not exported a model yet",
    ),
    ts.INFO.kind: (
        "tuningSweepRef",
        "tuningSweep",
        _model_of_tuning_sweep,
        "has no best trial with a model yet",
    ),
}


SOURCE_KINDS = tuple(_SOURCES)


def source_field(kind: str) -> str:
    """The ``spec.model`` field that names an object of ``kind``."""
    return _SOURCES[kind][0]


def _follow(ctx: Context, namespace: str, kind: str, name: str) -> Resolved | Verdict:
    field_name, lineage_key, model_of, not_yet = _SOURCES[kind]
    obj = ctx.cluster.get(API_VERSION, kind, namespace, name)
    if obj is None:
        return _problem(
            "ModelNotFound",
            f"spec.model.{field_name}: {kind} {name!r} does not exist in {namespace}",
        )
    status = obj.get("status") or {}
    found = model_of(status)
    if found is None:
        return Verdict(
            "Waiting", False, "WaitingForModel", f"{kind} {name!r} {not_yet}", progressing=True
        )
    checked = _checked(found["uri"], found["digest"], f"{kind} {name!r}")
    if isinstance(checked, Verdict):
        return checked
    lineage = {**(status.get("lineage") or {}), lineage_key: name}
    if found.get("trial"):
        lineage["trial"] = str(found["trial"])
    return Resolved(replace(checked, lineage=version_lineage(lineage)), lineage)


def resolve(ctx: Context, namespace: str, source: md.ModelSource) -> Resolved | Verdict:
    """The concrete model, or a Verdict explaining why there is none yet."""
    if source.uri is not None:
        assert source.digest is not None  # guaranteed by the CEL rule and re-checked by pydantic
        return Resolved(ModelVersion(source.uri, source.digest))
    if source.training_job_ref is not None:
        return _follow(ctx, namespace, tj.INFO.kind, source.training_job_ref.name)
    assert source.tuning_sweep_ref is not None
    return _follow(ctx, namespace, ts.INFO.kind, source.tuning_sweep_ref.name)
