"""Judging a progressive rollout (Canary, ABTest, Shadow): pure decisions, no I/O, no clock.

The reconciler measures (metrics from the analysis provider, webhook answers) and passes the
results and the time in; these functions say what the rollout does next. Semantics follow Flagger
where Flagger has them (``threshold`` counts failed checks over the whole rollout; webhook types
and gates) and differ where its users complain: a metric with too few requests, no data or NaN is
*inconclusive*, which neither advances the rollout nor counts as a failure; after
``inconclusiveLimit`` of them in a row the rollout holds (or rolls back, if asked to).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Literal

from slipway.api.v1alpha1.rollout import (
    Analysis,
    AnalysisMetric,
    MetricResult,
    Rollout,
    RolloutStatus,
    WebhookResult,
)

from .rollout import Live, Split, seconds

Outcome = Literal["Passed", "Failed", "Inconclusive"]
Action = Literal["none", "advance", "promote", "rollback", "hold"]
PROGRESSIVE = ("Canary", "ABTest", "Shadow")
ACTIVE = ("Progressing", "Holding", "WaitingPromotion")  # phases with traffic under analysis
DONE = ("Succeeded", "Failed")


def timestamp(when: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds: checks a few seconds apart need sub-second times."""
    return (
        when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def canary_weights(analysis: Analysis) -> list[int]:
    """The candidate's weight at each canary step: ``stepWeights``, else ``stepWeight`` added
    until ``maxWeight`` (the last step capped at it)."""
    if analysis.step_weights:
        return list(analysis.step_weights)
    weights, weight = [], 0
    while weight < analysis.max_weight:
        weight = min(weight + analysis.step_weight, analysis.max_weight)
        weights.append(weight)
    return weights


def total_steps(strategy: str, analysis: Analysis) -> int:
    """Canary: its steps; ABTest and Shadow: the passed checks that promote."""
    return len(canary_weights(analysis)) if strategy == "Canary" else analysis.iterations


def describe(name: str, value: float) -> str:
    """A metric value for people: percent, milliseconds or a plain number."""
    if name == "request-success-rate":
        return f"{value:.2f}%"
    if name == "request-duration":
        return f"{value:.1f} ms"
    return f"{value:.4g}"


def judge_metric(
    metric: AnalysisMetric,
    value: float | None,
    sample_size: float | None,
    min_sample_size: int,
    now: dt.datetime,
) -> MetricResult:
    """One metric's verdict: too few requests, no data or NaN is Inconclusive; else Passed or
    Failed against ``thresholdRange``."""
    when = timestamp(now)

    def result(verdict: str, message: str) -> MetricResult:
        return MetricResult.model_validate(
            {
                "name": metric.name,
                "verdict": verdict,
                "value": None if value is None or math.isnan(value) else round(value, 6),
                "sampleSize": sample_size,
                "message": message,
                "time": when,
            }
        )

    window = metric.interval
    if sample_size is not None and sample_size < min_sample_size:
        return result(
            "Inconclusive",
            f"{metric.name}: {sample_size:.0f} candidate requests in {window} "
            f"(minSampleSize {min_sample_size})",
        )
    if value is None or math.isnan(value):
        return result("Inconclusive", f"{metric.name}: no data in {window}")
    bounds = metric.threshold_range
    shown = describe(metric.name, value)
    if bounds.min is not None and value < bounds.min:
        return result("Failed", f"{metric.name} {shown} < min {describe(metric.name, bounds.min)}")
    if bounds.max is not None and value > bounds.max:
        return result("Failed", f"{metric.name} {shown} > max {describe(metric.name, bounds.max)}")
    return result("Passed", f"{metric.name} {shown}")


def skipped_metric(metric: AnalysisMetric, now: dt.datetime) -> MetricResult:
    """A metric not measured: the operator runs without an analysis provider."""
    return MetricResult(
        name=metric.name,
        verdict="Skipped",
        message=f"{metric.name}: not measured (analysis provider none)",
        time=timestamp(now),
    )


def check_outcome(
    metrics: Sequence[MetricResult], hooks: Sequence[WebhookResult]
) -> tuple[Outcome, str]:
    """A check's outcome and its summary: Failed if a metric failed or a rollout hook did not
    answer 2xx (evidence wins over missing data); else Inconclusive if a metric was; else
    Passed."""
    failed = [m.message for m in metrics if m.verdict == "Failed"]
    failed += [f"webhook {h.name}: {h.message}" for h in hooks if not h.passed]
    if failed:
        return "Failed", "; ".join(failed)
    unsure = [m.message for m in metrics if m.verdict == "Inconclusive"]
    if unsure:
        return "Inconclusive", "; ".join(unsure)
    shown = [m.message for m in metrics if m.verdict == "Passed"]
    return "Passed", "; ".join(shown) or "no metrics; webhooks passed"


def start(
    strategy: str, candidate: str, digest: str, stable: str, analysis: Analysis, now: dt.datetime
) -> RolloutStatus:
    """A new rollout, waiting for its candidate to be ready (and for the first gates)."""
    return RolloutStatus(
        strategy=strategy,
        phase="Waiting",
        candidate=candidate,
        candidate_digest=digest,
        stable=stable,
        steps=total_steps(strategy, analysis),
        started_at=timestamp(now),
        reason="CandidateNotReady",
        message=f"waiting for candidate {candidate} to be ready",
    )


def next_check(analysis: Analysis, now: dt.datetime) -> str:
    return timestamp(now + dt.timedelta(seconds=seconds(analysis.interval)))


def begin(state: RolloutStatus, analysis: Analysis, now: dt.datetime) -> RolloutStatus:
    """Every gate before the first step passed: the candidate takes its first traffic."""
    weight = canary_weights(analysis)[0] if state.strategy == "Canary" else 0
    how = {
        "Canary": f"{weight}% of traffic",
        "ABTest": "the requests matching analysis.match",
        "Shadow": f"a mirrored copy of {analysis.mirror_percentage:g}% of traffic",
    }[state.strategy]
    return state.model_copy(
        update={
            "phase": "Progressing",
            "step": 1 if state.strategy == "Canary" else 0,
            "weight": weight,
            "next_check_time": next_check(analysis, now),
            "reason": "Started",
            "message": f"candidate {state.candidate} receives {how}",
        }
    )


def after_check(
    state: RolloutStatus,
    outcome: Outcome,
    message: str,
    analysis: Analysis,
    now: dt.datetime,
) -> tuple[RolloutStatus, Action]:
    """Count a check and say what follows: another step, promotion (once confirm-promotion
    agrees), a rollback, a hold, or nothing (stay at this weight until the next check)."""
    update: dict[str, object] = {
        "last_check_time": timestamp(now),
        "next_check_time": next_check(analysis, now),
        "message": message,
    }
    if outcome == "Failed":
        failed = state.failed_checks + 1
        update |= {"failed_checks": failed, "reason": "CheckFailed"}
        if failed >= analysis.threshold:
            update["message"] = (
                f"{message} (failed check {failed} of threshold {analysis.threshold})"
            )
            return state.model_copy(update=update), "rollback"
        update["message"] = f"{message} (failed check {failed} of {analysis.threshold})"
        return state.model_copy(update=update), "none"
    if outcome == "Inconclusive":
        streak = state.inconclusive_checks + 1
        update |= {"inconclusive_checks": streak, "reason": "CheckInconclusive"}
        if streak >= analysis.inconclusive_limit:
            update["message"] = f"{message} ({streak} inconclusive checks in a row)"
            if analysis.inconclusive_action == "Rollback":
                return state.model_copy(update=update), "rollback"
            update |= {"phase": "Holding", "reason": "AnalysisInconclusive"}
            return state.model_copy(update=update), "hold"
        return state.model_copy(update=update), "none"
    update |= {"inconclusive_checks": 0, "iterations": state.iterations + 1, "reason": "Passed"}
    if state.phase == "Holding":
        update["phase"] = "Progressing"
    if state.strategy == "Canary" and state.phase != "WaitingPromotion":
        weights = canary_weights(analysis)
        if state.step < len(weights):
            update |= {"step": state.step + 1, "weight": weights[state.step]}
            return state.model_copy(update=update), "advance"
    elif state.strategy != "Canary" and state.iterations + 1 < analysis.iterations:
        return state.model_copy(update=update), "none"
    return state.model_copy(update=update), "promote"


def waiting_promotion(state: RolloutStatus, message: str) -> RolloutStatus:
    return state.model_copy(
        update={"phase": "WaitingPromotion", "reason": "WaitingForConfirmation", "message": message}
    )


def finished(state: RolloutStatus, promoted: bool, reason: str, message: str) -> RolloutStatus:
    """The rollout ended: promoted (Succeeded) or rolled back (Failed)."""
    return state.model_copy(
        update={
            "phase": "Succeeded" if promoted else "Failed",
            "weight": 100 if promoted else 0,
            "next_check_time": None,
            "reason": reason,
            "message": message,
        }
    )


def progressive_split(live: Live, state: RolloutStatus, rollout: Rollout) -> Split:
    """The routes of a rollout under way: weights for Canary, a match for ABTest, a mirror for
    Shadow; before the first step (or after it ended) the stable version keeps everything."""
    candidate = live.candidate
    if candidate is None or state.phase not in ACTIVE:
        return Split(live.stable, 100, candidate, 0, waiting=candidate is not None)
    analysis = rollout.analysis or Analysis()
    if state.strategy == "ABTest":
        match = tuple(m.to_api() for m in analysis.match or [])
        return Split(live.stable, 100, candidate, 0, match=match)
    if state.strategy == "Shadow":
        return Split(live.stable, 100, candidate, 0, mirror=analysis.mirror_percentage)
    return Split(live.stable, 100 - state.weight, candidate, state.weight)
