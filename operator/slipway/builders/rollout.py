"""Rollout decisions for a ModelDeployment: which versions are live and what traffic each gets.

Pure functions of (what status says was live, what the spec asks for, whether the candidate is
ready). The status is the memory of a level-based reconcile: it records the stable version, so when
the spec's model changes the operator knows the new one is a candidate, not a replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipway.api.v1alpha1.modeldeployment import Rollout


@dataclass(frozen=True)
class ModelVersion:
    """A model artifact to serve; its version id is derived from the digest."""

    uri: str
    digest: str

    @property
    def version(self) -> str:
        """'v' plus the first 8 hex digits of the digest: stable, short, a valid label value."""
        return "v" + self.digest.removeprefix("sha256:")[:8]


@dataclass(frozen=True)
class Live:
    """The versions to run now: the stable one and, during a rollout, a candidate."""

    stable: ModelVersion
    candidate: ModelVersion | None = None


@dataclass(frozen=True)
class Split:
    """Traffic weights (percent) for the live versions, and whether the candidate was promoted."""

    stable: ModelVersion
    stable_weight: int
    candidate: ModelVersion | None
    candidate_weight: int
    promoted: bool = False
    waiting: bool = False


def live_versions(
    stable: ModelVersion | None, candidate: ModelVersion | None, desired: ModelVersion
) -> Live:
    """Which versions run, given the recorded ones and the spec's model.

    - nothing live yet, or the spec names the stable version (also a rollback): stable only;
    - the spec names a new model: it becomes the candidate, replacing any earlier candidate.
    """
    del candidate  # a new desired model always supersedes an earlier candidate
    if stable is None or stable.version == desired.version:
        return Live(stable=desired)
    return Live(stable=stable, candidate=desired)


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
