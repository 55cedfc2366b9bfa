"""Progressive rollout decisions: steps, metric verdicts, check outcomes, what follows a check."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from slipway.api.v1alpha1.rollout import (
    Analysis,
    AnalysisMetric,
    MetricResult,
    Rollout,
    RolloutStatus,
    WebhookResult,
)
from slipway.builders import analysis as plan
from slipway.builders.rollout import Live, ModelVersion, seconds

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, 250000, tzinfo=dt.UTC)
STABLE = ModelVersion("file:///m/1.onnx", "sha256:" + "1" * 64)
CANDIDATE = ModelVersion("file:///m/2.onnx", "sha256:" + "2" * 64)
SUCCESS = AnalysisMetric.model_validate(
    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"}
)
LATENCY = AnalysisMetric.model_validate(
    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}
)


def analysis(**fields: object) -> Analysis:
    return Analysis.model_validate({"interval": "10s", "threshold": 2, **fields})


def state(strategy: str = "Canary", **fields: object) -> RolloutStatus:
    base = plan.start(strategy, "v22222222", CANDIDATE.digest, "v11111111", analysis(), NOW)
    return base.model_copy(update=fields)


def test_durations() -> None:
    assert [seconds(d) for d in ("250ms", "30s", "5m", "1h")] == [0.25, 30, 300, 3600]
    with pytest.raises(ValueError, match="not a duration"):
        seconds("5 minutes")


def test_times_keep_milliseconds_and_read_back() -> None:
    text = plan.timestamp(NOW)
    assert text == "2026-11-28T12:00:00.250Z"
    assert plan.parse_time(text) == NOW


@pytest.mark.parametrize(
    ("fields", "weights"),
    [
        ({}, [10, 20, 30, 40, 50]),
        ({"stepWeight": 30, "maxWeight": 50}, [30, 50]),
        ({"stepWeight": 25, "maxWeight": 100}, [25, 50, 75, 100]),
        ({"stepWeights": [5, 20, 50], "maxWeight": 60}, [5, 20, 50]),
    ],
)
def test_canary_weights(fields: dict[str, object], weights: list[int]) -> None:
    assert plan.canary_weights(analysis(**fields)) == weights


@pytest.mark.parametrize(
    ("metric", "value", "sample", "verdict", "message"),
    [
        (SUCCESS, 100.0, 50, "Passed", "request-success-rate 100.00%"),
        (SUCCESS, 42.5, 50, "Failed", "request-success-rate 42.50% < min 99.00%"),
        (LATENCY, 812.0, 50, "Failed", "request-duration 812.0 ms > max 500.0 ms"),
        (SUCCESS, 100.0, 3, "Inconclusive", "3 candidate requests in 30s (minSampleSize 10)"),
        (SUCCESS, None, 50, "Inconclusive", "request-success-rate: no data in 30s"),
        (LATENCY, math.nan, 50, "Inconclusive", "request-duration: no data in 30s"),
    ],
)
def test_metric_verdicts(
    metric: AnalysisMetric, value: float | None, sample: float, verdict: str, message: str
) -> None:
    result = plan.judge_metric(metric, value, sample, 10, NOW)
    assert result.verdict == verdict
    assert message in result.message
    assert result.time == "2026-11-28T12:00:00.250Z"
    assert result.value is None or not math.isnan(result.value)


def test_few_requests_are_inconclusive_even_when_the_value_fails() -> None:
    """Three errors out of three requests is not evidence enough (minSampleSize)."""
    assert plan.judge_metric(SUCCESS, 0.0, 3, 10, NOW).verdict == "Inconclusive"


def _metric(verdict: str, message: str) -> MetricResult:
    return MetricResult.model_validate({"name": "m", "verdict": verdict, "message": message})


def test_check_outcome_failure_wins_over_missing_data() -> None:
    failed, unsure = _metric("Failed", "m 1 > max 0"), _metric("Inconclusive", "n: no data")
    assert plan.check_outcome([unsure, failed], []) == ("Failed", "m 1 > max 0")
    assert plan.check_outcome([unsure], [])[0] == "Inconclusive"
    hook = WebhookResult(name="smoke", type="rollout", passed=False, code=500, message="HTTP 500")
    assert plan.check_outcome([_metric("Passed", "m 1")], [hook]) == (
        "Failed",
        "webhook smoke: HTTP 500",
    )
    assert plan.check_outcome([], [])[0] == "Passed"


def test_failed_checks_count_over_the_rollout_up_to_threshold() -> None:
    a = analysis(stepWeights=[20, 50])
    s = plan.begin(state(), a, NOW)
    s, action = plan.after_check(s, "Failed", "m bad", a, NOW)
    assert (action, s.failed_checks, s.weight) == ("none", 1, 20)
    s, action = plan.after_check(s, "Passed", "m ok", a, NOW)  # a pass does not reset failures
    assert (action, s.failed_checks, s.step, s.weight) == ("advance", 1, 2, 50)
    s, action = plan.after_check(s, "Failed", "m bad", a, NOW)
    assert action == "rollback"
    assert "failed check 2 of threshold 2" in s.message


def test_inconclusive_checks_hold_then_resume() -> None:
    a = analysis(stepWeights=[20, 50], inconclusiveLimit=2)
    s = plan.begin(state(), a, NOW)
    s, action = plan.after_check(s, "Inconclusive", "no data", a, NOW)
    assert (action, s.phase, s.failed_checks) == ("none", "Progressing", 0)
    s, action = plan.after_check(s, "Inconclusive", "no data", a, NOW)
    assert (action, s.phase, s.reason, s.weight) == ("hold", "Holding", "AnalysisInconclusive", 20)
    s, action = plan.after_check(s, "Inconclusive", "no data", a, NOW)
    assert (action, s.phase, s.failed_checks) == ("hold", "Holding", 0)  # never a failure
    s, action = plan.after_check(s, "Passed", "ok", a, NOW)
    assert (action, s.phase, s.inconclusive_checks, s.weight) == ("advance", "Progressing", 0, 50)


def test_inconclusive_checks_can_roll_back_when_asked() -> None:
    a = analysis(inconclusiveLimit=1, inconclusiveAction="Rollback")
    s = plan.begin(state(), a, NOW)
    assert plan.after_check(s, "Inconclusive", "no data", a, NOW)[1] == "rollback"


def test_canary_promotes_after_its_last_step_passes() -> None:
    a = analysis(stepWeights=[50])
    s = plan.begin(state(), a, NOW)
    assert (s.phase, s.step, s.weight) == ("Progressing", 1, 50)
    assert s.next_check_time == "2026-11-28T12:00:10.250Z"
    s, action = plan.after_check(s, "Passed", "ok", a, NOW)
    assert action == "promote"
    waiting = plan.waiting_promotion(s, "waiting for confirm-promotion")
    _, again = plan.after_check(waiting, "Passed", "ok", a, NOW)
    assert again == "promote"  # while waiting, every passed check asks again


@pytest.mark.parametrize("strategy", ["ABTest", "Shadow"])
def test_ab_and_shadow_promote_after_their_iterations(strategy: str) -> None:
    a = analysis(iterations=3, match=[{"headers": {"x-group": {"exact": "beta"}}}])
    s = plan.begin(state(strategy), a, NOW)
    actions = []
    for _ in range(3):
        s, action = plan.after_check(s, "Passed", "ok", a, NOW)
        actions.append(action)
    assert actions == ["none", "none", "promote"]
    assert s.iterations == 3 and s.weight == 0


def test_splits_by_strategy() -> None:
    live = Live(STABLE, CANDIDATE)
    a = {"interval": "10s", "match": [{"headers": {"x-group": {"exact": "beta"}}}]}
    canary = plan.begin(state(), analysis(stepWeights=[30]), NOW)
    rollout = Rollout.model_validate({"strategy": "Canary", "analysis": a})
    split = plan.progressive_split(live, canary, rollout)
    assert (split.stable_weight, split.candidate_weight, split.match, split.mirror) == (
        70,
        30,
        (),
        0,
    )

    ab = plan.begin(state("ABTest"), analysis(), NOW)
    split = plan.progressive_split(live, ab, rollout)
    assert (split.stable_weight, split.candidate_weight) == (100, 0)
    assert split.match == ({"headers": {"x-group": {"exact": "beta"}}},)

    shadow = plan.begin(state("Shadow"), analysis(), NOW)
    rollout = Rollout.model_validate({"strategy": "Shadow", "analysis": {"mirrorPercentage": 25}})
    split = plan.progressive_split(live, shadow, rollout)
    assert (split.stable_weight, split.candidate_weight, split.mirror) == (100, 0, 25)

    waiting = plan.progressive_split(live, state(), rollout)  # before the first step
    assert (waiting.stable_weight, waiting.candidate_weight, waiting.mirror) == (100, 0, 0)


def test_finished_rollouts() -> None:
    s = plan.begin(state(), analysis(), NOW)
    done = plan.finished(s, True, "Promoted", "ok")
    assert (done.phase, done.weight, done.next_check_time) == ("Succeeded", 100, None)
    failed = plan.finished(s, False, "AnalysisFailed", "bad")
    assert (failed.phase, failed.weight, failed.reason) == ("Failed", 0, "AnalysisFailed")
