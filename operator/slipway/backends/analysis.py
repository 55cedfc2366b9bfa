"""The analysis concern: measure a rollout candidate's metrics for the rollout to judge.

A provider answers two questions for one candidate version: how many requests it served in a
window (``sample_size``, for ``minSampleSize``) and the value of one metric (``measure``: a builtin
computed from the model server's own series, or the user's query template). ``None`` means no data
(an empty result or NaN): the rollout counts that as inconclusive, never as a failure. A provider
that cannot be reached raises ``AnalysisUnavailable``: the rollout holds and retries; a query the
provider refuses raises ``QueryRejected``: the rollout holds and says which metric is wrong.

Providers: ``prometheus`` (``prometheus.py``) and ``none`` (below: measures nothing, so metrics
are reported Skipped and only webhooks gate the rollout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from slipway.api.v1alpha1.rollout import AnalysisMetric


class AnalysisUnavailable(Exception):
    """The metrics provider could not be reached or failed: retry later, judge nothing."""


class QueryRejected(Exception):
    """The provider refused a query (e.g. PromQL syntax): the metric's definition is wrong."""

    def __init__(self, metric: str, detail: str) -> None:
        super().__init__(f"metric {metric}: {detail}")
        self.metric = metric


@dataclass(frozen=True)
class Target:
    """What is measured: one version of one ModelDeployment, and the stable version beside it.

    ``model`` is the ``model`` label of the server's series (the name it serves under);
    ``version`` the candidate's version id, ``stable`` the stable one's.
    """

    namespace: str
    name: str
    model: str
    version: str
    stable: str


class AnalysisBackend(Protocol):
    """Measures a candidate version's metrics."""

    measures: bool
    """False for a provider that measures nothing (metrics are reported Skipped)."""

    def sample_size(self, target: Target, window: str) -> float | None:
        """Requests the candidate served in ``window`` (a duration such as '1m'); None: no data."""
        ...

    def measure(self, metric: AnalysisMetric, target: Target) -> float | None:
        """The metric's value over its window; None when there is no data or it is NaN."""
        ...


class NoAnalysis:
    """Provider ``none``: no metrics system; metrics are Skipped, webhooks still gate."""

    measures = False

    def sample_size(self, target: Target, window: str) -> float | None:
        return None

    def measure(self, metric: AnalysisMetric, target: Target) -> float | None:
        return None
