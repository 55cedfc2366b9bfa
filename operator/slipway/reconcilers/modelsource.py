"""Resolve a ModelDeployment's model source to a concrete URI and digest.

A URI with its digest is used as given. A TrainingJob or TuningSweep reference is followed to the
model that object exported; when that object does not exist or has not exported a model yet, the
answer is a Verdict saying so, with the exact reason and how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slipway.api.v1alpha1 import modeldeployment as md
from slipway.api.v1alpha1 import trainingjob as tj
from slipway.api.v1alpha1 import tuningsweep as ts
from slipway.api.v1alpha1.common import API_VERSION, DIGEST
from slipway.builders.rollout import ModelVersion

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


def resolve(ctx: Context, namespace: str, source: md.ModelSource) -> Resolved | Verdict:
    """The concrete model, or a Verdict explaining why there is none yet."""
    if source.uri is not None:
        assert source.digest is not None  # guaranteed by the CEL rule and re-checked by pydantic
        return Resolved(ModelVersion(source.uri, source.digest))
    if source.training_job_ref is not None:
        name = source.training_job_ref.name
        obj = ctx.cluster.get(API_VERSION, tj.INFO.kind, namespace, name)
        if obj is None:
            return _problem(
                "ModelNotFound",
                f"spec.model.trainingJobRef: TrainingJob {name!r} does not exist in {namespace}",
            )
        model = (obj.get("status") or {}).get("model")
        if not model:
            return Verdict(
                "Waiting",
                False,
                "WaitingForModel",
                f"TrainingJob {name!r} has not exported a model yet",
                progressing=True,
            )
        checked = _checked(model.get("uri"), model.get("digest"), f"TrainingJob {name!r}")
        if isinstance(checked, Verdict):
            return checked
        lineage = dict((obj.get("status") or {}).get("lineage") or {})
        return Resolved(checked, {**lineage, "trainingJob": name})
    assert source.tuning_sweep_ref is not None
    name = source.tuning_sweep_ref.name
    obj = ctx.cluster.get(API_VERSION, ts.INFO.kind, namespace, name)
    if obj is None:
        return _problem(
            "ModelNotFound",
            f"spec.model.tuningSweepRef: TuningSweep {name!r} does not exist in {namespace}",
        )
    best = (obj.get("status") or {}).get("bestTrial") or {}
    if not best.get("modelUri"):
        return Verdict(
            "Waiting",
            False,
            "WaitingForModel",
            f"TuningSweep {name!r} has no best trial with a model yet",
            progressing=True,
        )
    checked = _checked(best.get("modelUri"), best.get("modelDigest"), f"TuningSweep {name!r}")
    if isinstance(checked, Verdict):
        return checked
    lineage = dict((obj.get("status") or {}).get("lineage") or {})
    return Resolved(checked, {**lineage, "tuningSweep": name, "trial": str(best.get("name"))})
