"""Rollout decisions for a ModelDeployment: which versions are live and what traffic each gets.

A version is identified by its model's whole digest; its id (``v`` + hex digits of the digest) is
short for names and labels, and made longer when two live digests would otherwise share it.

Pure functions of (what status says was live, what the spec asks for, whether the candidate is
ready). The status is the memory of a level-based reconcile: it records the stable version, so when
the spec's model changes the operator knows the new one is a candidate, not a replacement.

A ``Split`` says how requests reach the versions: by weight (Static, Canary), by match (ABTest:
matching requests go to the candidate) or by mirror (Shadow: the candidate gets a copy). The
judgement of a progressive rollout (metrics, checks, steps) lives in ``builders/analysis.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from slipway.api.v1alpha1.rollout import Rollout

ID_HEX = 8  # hex digits of the digest in a version id, unless two live digests share them
MAX_ID_HEX = 24  # a 96-bit prefix: the id (25 characters) still fits every child name


class DigestPrefixCollision(ValueError):
    """Two different digests share their first ``MAX_ID_HEX`` hex digits (never seen for sha256)."""


def version_id(digest: str, hex_digits: int = ID_HEX) -> str:
    """'v' plus the first ``hex_digits`` of the digest: a valid label value and DNS label part."""
    return "v" + digest.removeprefix("sha256:")[:hex_digits]


def distinct_id(digest: str, taken: dict[str, str]) -> str:
    """The shortest id of ``digest`` (8, 16 or 24 hex digits) that no other digest holds.

    ``taken`` maps the ids in use to their digests. Different digests never share an id, so they
    never share a version, a subset or a deployment.
    """
    for hex_digits in range(ID_HEX, MAX_ID_HEX + 1, ID_HEX):
        candidate = version_id(digest, hex_digits)
        if taken.get(candidate, digest) == digest:
            return candidate
    raise DigestPrefixCollision(
        f"model digest {digest} shares its first {MAX_ID_HEX} hex digits with a live version's"
    )


# The links of a ModelDeployment's lineage that describe one version for its whole life (where
# its model came from), recorded per version in status and annotated on its pods for Kiali.
VERSION_LINEAGE = (
    "dataset",
    "datasetVersion",
    "datasetDigest",
    "trainingJob",
    "tuningSweep",
    "trial",
    "run",
)


def version_lineage(lineage: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The per-version links of a lineage block, in a fixed order."""
    lineage = lineage or {}
    return tuple((key, str(lineage[key])) for key in VERSION_LINEAGE if lineage.get(key))


@dataclass(frozen=True)
class ModelVersion:
    """A model artifact to serve, identified by its whole digest.

    ``id`` is the version id once assigned (recorded in status); empty means the default
    ``version_id(digest)``. ``lineage`` says where the model came from (``VERSION_LINEAGE`` keys);
    it describes the version and takes no part in comparing two.
    """

    uri: str
    digest: str
    id: str = ""
    lineage: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def version(self) -> str:
        """The version id: a label value, subset name and part of the deployment's name."""
        return self.id or version_id(self.digest)


@dataclass(frozen=True)
class Live:
    """The versions to run now: the stable one and, during a rollout, a candidate."""

    stable: ModelVersion
    candidate: ModelVersion | None = None


@dataclass(frozen=True)
class Split:
    """How requests reach the live versions, and whether the candidate was promoted.

    Weights are percent. ``match`` (ABTest): requests matching any of these Istio
    HTTPMatchRequests go to the candidate whatever the weights. ``mirror`` (Shadow): percent of
    the requests copied to the candidate, whose answers are discarded. ``previous``: the version
    promoted away from, kept routable (a subset) with no traffic.
    """

    stable: ModelVersion
    stable_weight: int
    candidate: ModelVersion | None
    candidate_weight: int
    promoted: bool = False
    waiting: bool = False
    match: tuple[dict[str, Any], ...] = field(default=())
    mirror: float = 0.0
    previous: ModelVersion | None = None

    @property
    def versions(self) -> list[ModelVersion]:
        """Every version the routing must know: stable, candidate, previous."""
        return [v for v in (self.stable, self.candidate, self.previous) if v is not None]


def live_versions(
    stable: ModelVersion | None, candidate: ModelVersion | None, desired: ModelVersion
) -> Live:
    """Which versions run, given the recorded ones and the spec's model.

    - nothing live yet, or the spec names the stable model (also a rollback): stable only;
    - the spec names a new model: it becomes the candidate, replacing any earlier candidate.

    Models are compared by their whole digest. A recorded version keeps its id; a new one gets an
    id that no recorded version of another digest holds (``distinct_id``), so a new model whose
    digest merely starts like the stable one's is still a candidate with its own deployment.
    """
    if stable is None:
        return Live(stable=desired)
    if desired.digest == stable.digest:  # a version keeps the lineage it was first served with
        return Live(
            stable=replace(desired, id=stable.version, lineage=stable.lineage or desired.lineage)
        )
    if candidate is not None and desired.digest == candidate.digest:
        lineage = candidate.lineage or desired.lineage
        return Live(
            stable=stable, candidate=replace(desired, id=candidate.version, lineage=lineage)
        )
    taken = {v.version: v.digest for v in (stable, candidate) if v is not None}
    return Live(stable=stable, candidate=replace(desired, id=distinct_id(desired.digest, taken)))


def static_split(live: Live, rollout: Rollout, candidate_ready: bool) -> Split:
    """Static strategy: the candidate gets ``candidateWeight`` once ready; 100 promotes it.

    An unready candidate gets no traffic (``waiting``), so users never hit a version that cannot
    answer.
    """
    if live.candidate is None:
        return Split(live.stable, 100, None, 0)
    if not candidate_ready:
        return Split(live.stable, 100, live.candidate, 0, waiting=True)
    weight = rollout.candidate_weight
    if weight == 100:
        return Split(live.candidate, 100, None, 0, promoted=True)
    return Split(live.stable, 100 - weight, live.candidate, weight)


_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """'500ms', '30s', '5m', '1h' in seconds (the API's duration pattern)."""
    found = _DURATION.match(duration)
    if not found:
        raise ValueError(f"not a duration: {duration!r} (use e.g. 30s, 5m, 1h)")
    return int(found.group(1)) * _UNIT[found.group(2)]
