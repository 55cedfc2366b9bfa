"""Rollout policy and rollout status of a ModelDeployment: Canary, ABTest and Shadow analysis.

The spec side reuses Flagger's ``analysis`` names and semantics (interval, threshold, stepWeight,
stepWeights, maxWeight, iterations, match, metrics with thresholdRange, webhooks with Flagger's
types) and adds what Flagger lacks: ``minSampleSize`` and inconclusive checks, which neither
advance nor fail a rollout, and ``keepPrevious``. The status side, ``RolloutStatus``, is the whole
memory of a rollout, so an operator restarted mid-rollout resumes at the same step.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from .common import Model, Name, cel

DEFAULT_PROGRESS_DEADLINE_S = 600
DURATION = r"^[0-9]+(ms|s|m|h)$"
BUILTIN_METRICS = ("request-success-rate", "request-duration")
# Variables a custom metric's query may use, written {{ name }} (Flagger's template style).
QUERY_VARIABLES = ("namespace", "name", "model", "version", "candidate", "stable", "interval")
_VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")


class MetricThreshold(Model):
    """Acceptable range of a metric (Flagger's thresholdRange)."""

    model_config = cel(
        (
            "!has(self.min) || !has(self.max) || self.min <= self.max",
            "thresholdRange.min must be <= thresholdRange.max",
        ),
    )

    min: float | None = Field(default=None, description="Lowest acceptable value.")
    max: float | None = Field(default=None, description="Highest acceptable value.")


class AnalysisMetric(Model):
    """One metric checked at each analysis interval.

    Builtin metrics are computed from the model server's own series for the candidate version:
    ``request-success-rate`` (percent of requests not answered 5xx) and ``request-duration``
    (99th percentile latency in milliseconds). Any other name needs ``query``: PromQL in which
    {{ namespace }}, {{ name }}, {{ model }}, {{ version }} (= {{ candidate }}), {{ stable }} and
    {{ interval }} are replaced, so a query can measure the candidate alone or compare it with
    the stable version.
    """

    model_config = cel(
        (
            "self.name in ['request-success-rate', 'request-duration'] || has(self.query)",
            "analysis.metrics: a custom metric (not request-success-rate or request-duration) "
            "needs a query",
        ),
    )

    name: Name = Field(description="request-success-rate, request-duration or a custom name.")
    threshold_range: MetricThreshold = Field(description="Range the metric must stay in.")
    interval: str = Field(default="1m", pattern=DURATION, description="Query window.")
    query: str | None = Field(
        default=None,
        max_length=4096,
        description="PromQL template for a custom metric; variables: "
        + ", ".join("{{ " + v + " }}" for v in QUERY_VARIABLES)
        + ". A query with no result or NaN is inconclusive, never a failure.",
    )

    @field_validator("query")
    @classmethod
    def _known_variables(cls, query: str | None) -> str | None:
        unknown = sorted({v for v in _VARIABLE.findall(query or "") if v not in QUERY_VARIABLES})
        if unknown:
            raise ValueError(
                f"unknown template variables {unknown}; use {', '.join(QUERY_VARIABLES)}"
            )
        return query


WebhookType = Literal[
    "confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "post-rollout", "rollback"
]


class Webhook(Model):
    """A hook called during the rollout, with Flagger's types and gate semantics.

    confirm-rollout: the candidate gets no traffic until it answers 2xx (asked every interval).
    pre-rollout: called before the first step; a failure counts towards threshold.
    rollout: called at every check; a failure counts towards threshold.
    confirm-promotion: promotion waits until it answers 2xx; analysis goes on meanwhile.
    post-rollout: called once after promotion or rollback; informational.
    rollback: asked at every check; a 2xx aborts the rollout.
    """

    name: Name = Field(description="Hook name.")
    type: WebhookType = Field(default="rollout", description="When the hook runs.")
    url: str = Field(pattern=r"^https?://\S+$", description="URL called with a POST.")
    timeout: str = Field(default="10s", pattern=DURATION, description="Call timeout.")
    metadata: dict[str, str] | None = Field(
        default=None,
        description="Sent with every call, as Flagger's webhook metadata.",
        json_schema_extra={"maxProperties": 32},
    )


class StringMatch(Model):
    """Istio's StringMatch: exactly one of exact, prefix, regex (RE2)."""

    model_config = cel(
        (
            "[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() == 1",
            "set exactly one of exact, prefix, regex",
        ),
    )

    exact: str | None = Field(default=None, max_length=1024, description="Exact value.")
    prefix: str | None = Field(default=None, max_length=1024, description="Value prefix.")
    regex: str | None = Field(default=None, max_length=1024, description="RE2 regular expression.")


class HTTPMatchRequest(Model):
    """Which requests an A/B test sends to the candidate (a subset of Istio's HTTPMatchRequest).
    Every condition given must hold; a cookie is matched through the ``cookie`` header."""

    name: str | None = Field(default=None, max_length=63, description="Name of this match.")
    headers: dict[str, StringMatch] | None = Field(
        default=None,
        description="Request headers (lower-case names), e.g. {x-canary: {exact: insider}} or "
        "{cookie: {regex: '^(.*?;)?(user=insider)(;.*)?$'}}.",
        json_schema_extra={"maxProperties": 16},
    )
    query_params: dict[str, StringMatch] | None = Field(
        default=None, description="Query parameters.", json_schema_extra={"maxProperties": 16}
    )
    uri: StringMatch | None = Field(default=None, description="Request path.")
    method: StringMatch | None = Field(default=None, description="HTTP method.")


class Analysis(Model):
    """How a candidate is judged (Flagger's analysis block, plus inconclusive handling)."""

    model_config = cel(
        (
            "!has(self.stepWeights) || self.stepWeights.isSorted() && "
            "self.stepWeights.all(w, self.stepWeights.exists_one(x, x == w))",
            "analysis.stepWeights must be strictly ascending",
        ),
        (
            "!has(self.stepWeights) || self.stepWeights.all(w, w <= self.maxWeight)",
            "analysis.stepWeights must not exceed analysis.maxWeight",
        ),
        (
            "self.stepWeight <= self.maxWeight",
            "analysis.stepWeight must not exceed analysis.maxWeight",
        ),
    )

    interval: str = Field(
        default="1m", pattern=DURATION, description="Time between checks (and steps)."
    )
    threshold: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed checks (counted over the rollout) before rollback.",
    )
    step_weight: int = Field(
        default=10, ge=1, le=100, description="Canary: weight added at each step, up to maxWeight."
    )
    step_weights: list[int] | None = Field(
        default=None,
        max_length=20,
        description="Canary: candidate weights to step through, ascending, each 1-100 "
        "(instead of stepWeight).",
        json_schema_extra={"items": {"type": "integer", "minimum": 1, "maximum": 100}},
    )
    max_weight: int = Field(default=50, ge=1, le=100, description="Highest candidate weight.")
    iterations: int = Field(
        default=10, ge=1, le=1000, description="ABTest and Shadow: passed checks before promotion."
    )
    match: list[HTTPMatchRequest] | None = Field(
        default=None,
        max_length=16,
        description="ABTest: requests matching any of these go to the candidate, the rest to "
        "the stable version.",
    )
    mirror_percentage: float = Field(
        default=100.0,
        gt=0,
        le=100,
        description="Shadow: percent of live requests copied to the candidate (its answers are "
        "discarded).",
    )
    min_sample_size: int = Field(
        default=10,
        ge=0,
        description="Fewest candidate requests in a metric's window for the metric to count; "
        "fewer is inconclusive (neither a pass nor a failure).",
    )
    inconclusive_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Inconclusive checks in a row before inconclusiveAction applies.",
    )
    inconclusive_action: Literal["Hold", "Rollback"] = Field(
        default="Hold",
        description="Hold: stay at the current weight, with a condition saying why, and resume "
        "once a check is conclusive. Rollback: roll back.",
    )
    keep_previous: str = Field(
        default="5m",
        pattern=DURATION,
        description="After promotion the previous stable version stays deployed with no traffic "
        "this long, so reverting spec.model moves traffic back at once; 0s: delete it at once.",
    )
    metrics: list[AnalysisMetric] | None = Field(
        default=None, max_length=16, description="Metrics checked at each interval."
    )
    webhooks: list[Webhook] | None = Field(
        default=None, max_length=16, description="Hooks called during the rollout."
    )


class Rollout(Model):
    """How a new model version takes traffic from the live one."""

    model_config = cel(
        (
            "!has(self.strategy) || self.strategy != 'ABTest' || has(self.analysis) && "
            "has(self.analysis.match) && size(self.analysis.match) > 0",
            "spec.rollout.analysis.match is required with strategy ABTest",
        ),
    )

    strategy: Literal["Static", "Canary", "Shadow", "ABTest"] = Field(
        default="Static",
        description="Static: the candidate gets candidateWeight until it is 100 (promote) or the "
        "model is reverted. Canary: weight steps judged by analysis. ABTest: requests matching "
        "analysis.match go to the candidate. Shadow: the candidate gets a mirrored copy of live "
        "traffic. Canary, ABTest and Shadow promote or roll back on their own.",
    )
    candidate_weight: int = Field(
        default=10,
        ge=0,
        le=100,
        description="Static strategy: percent of traffic for the new version; 100 promotes it.",
    )
    progress_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Canary, ABTest, Shadow: a candidate not ready this long after it appeared "
        f"is rolled back (default {DEFAULT_PROGRESS_DEADLINE_S}).",
    )
    analysis: Analysis | None = Field(default=None, description="Metric-driven analysis.")


def _time(description: str) -> Any:
    """An optional RFC 3339 time (fractions of a second allowed)."""
    return Field(default=None, description=description, json_schema_extra={"format": "date-time"})


class MetricResult(Model):
    """The last result of one analysis metric."""

    name: str = Field(description="Metric name.")
    verdict: Literal["Passed", "Failed", "Inconclusive", "Skipped"] = Field(
        description="Passed or Failed against thresholdRange; Inconclusive: no data, NaN or too "
        "few requests; Skipped: no analysis provider."
    )
    value: float | None = Field(default=None, description="Measured value, if any.")
    sample_size: float | None = Field(
        default=None, description="Candidate requests in the metric's window."
    )
    message: str = Field(default="", description="Why this verdict.")
    time: str | None = _time("When it was measured.")


class WebhookResult(Model):
    """The last outcome of one webhook."""

    name: str = Field(description="Hook name.")
    type: str = Field(description="Hook type.")
    passed: bool = Field(description="Whether it answered 2xx.")
    code: int | None = Field(default=None, description="HTTP status code, if any answer came.")
    message: str = Field(default="", description="The answer or the error, shortened.")
    time: str | None = _time("When it was called.")


class RolloutStatus(Model):
    """Where a Canary, ABTest or Shadow rollout stands: enough to resume it after a restart at
    the same step, without repeating a gate that already passed."""

    strategy: str = Field(description="Strategy of this rollout.")
    phase: Literal[
        "Waiting", "Progressing", "Holding", "WaitingPromotion", "Succeeded", "Failed"
    ] = Field(
        description="Waiting: for the candidate to be ready or confirm-rollout/pre-rollout; "
        "Progressing: under analysis; Holding: too many inconclusive checks in a row; "
        "WaitingPromotion: every step passed, confirm-promotion not yet; Succeeded: promoted; "
        "Failed: rolled back."
    )
    candidate: str = Field(description="Candidate version id.")
    candidate_digest: str = Field(description="Candidate model digest.")
    stable: str = Field(description="Stable version id when the rollout started.")
    step: int = Field(default=0, description="Canary steps taken (0: no traffic yet).")
    steps: int = Field(default=0, description="Canary steps in all (ABTest, Shadow: iterations).")
    weight: int = Field(default=0, description="Candidate weight now (percent).")
    iterations: int = Field(default=0, description="Checks passed.")
    failed_checks: int = Field(default=0, description="Checks failed (towards threshold).")
    inconclusive_checks: int = Field(default=0, description="Inconclusive checks in a row.")
    gates: list[str] = Field(
        default_factory=list,
        description="One-time gates passed: confirm-rollout, pre-rollout, post-rollout.",
    )
    started_at: str | None = _time("When the candidate appeared.")
    last_check_time: str | None = _time("When the last check ran.")
    next_check_time: str | None = _time("When the next check is due.")
    generation: int | None = Field(
        default=None,
        description="The .metadata.generation when the rollout ended: a rolled-back candidate is "
        "tried again only once the spec changes.",
    )
    reason: str = Field(default="", description="Why the phase is what it is (one word).")
    message: str = Field(default="", description="The last check's outcome, in words.")
    metrics: list[MetricResult] = Field(
        default_factory=list, description="The last result of every metric."
    )
    webhooks: list[WebhookResult] = Field(
        default_factory=list, description="The last outcome of every webhook called."
    )
