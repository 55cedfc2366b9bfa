"""What a rollout does before its first step: the candidate's readiness deadline and the gates.

The hooks here point at a loopback port that nothing listens on, so every call gets no answer:
exactly what a gate that has not said yes looks like to the rollout.
"""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.backends.analysis import NoAnalysis
from slipway.backends.serving import VersionState
from slipway.builders import analysis as plan
from slipway.builders.meta import Owner
from slipway.builders.rollout import Live, ModelVersion
from slipway.reconcilers.rollout import RolloutRun, progress

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
OWNER = Owner("slipway.dev/v1alpha1", "ModelDeployment", "digits", "team", "uid-1")
STABLE = ModelVersion("file:///m/1.onnx", "sha256:" + "1" * 64)
CANDIDATE = ModelVersion("file:///m/2.onnx", "sha256:" + "2" * 64)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spec(**analysis: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": CANDIDATE.uri, "digest": CANDIDATE.digest},
            "rollout": {
                "strategy": "Canary",
                "progressDeadlineSeconds": 60,
                "analysis": {"interval": "10s", "threshold": 2, **analysis},
            },
        }
    )


def run(s: ModelDeploymentSpec, ready: bool, at: dt.datetime) -> RolloutRun:
    state = VersionState(ready=ready, detail="Available" if ready else "Creating")
    return RolloutRun(OWNER, s, Live(STABLE, CANDIDATE), state, NoAnalysis(), at, 3)


def started(s: ModelDeploymentSpec) -> Any:
    assert s.rollout.analysis is not None
    return plan.start("Canary", "v2", CANDIDATE.digest, "v1", s.rollout.analysis, NOW)


def test_an_unready_candidate_waits_until_its_deadline_then_is_rolled_back() -> None:
    s = spec()
    waiting = progress(run(s, False, NOW + dt.timedelta(seconds=20)), started(s))
    assert (waiting.state.phase, waiting.state.reason) == ("Waiting", "CandidateNotReady")
    assert waiting.due == NOW + dt.timedelta(seconds=60)  # reconcile again at the deadline
    assert (waiting.split.stable_weight, waiting.split.candidate_weight) == (100, 0)
    late = progress(run(s, False, NOW + dt.timedelta(seconds=61)), started(s))
    assert late.rolled_back and late.state.phase == "Failed"
    assert late.state.reason == "ProgressDeadlineExceeded"
    assert "not ready after 60 s: Creating" in late.state.message
    assert late.state.generation == 3  # tried again only once the spec changes
    assert (late.split.stable, late.split.candidate) == (STABLE, None)


def test_confirm_rollout_holds_the_candidate_at_zero_without_counting_failures() -> None:
    url = f"http://127.0.0.1:{closed_port()}/go"
    s = spec(webhooks=[{"name": "go", "type": "confirm-rollout", "url": url, "timeout": "2s"}])
    held = progress(run(s, True, NOW), started(s))
    assert (held.state.phase, held.state.reason) == ("Waiting", "WaitingForConfirmation")
    assert held.state.failed_checks == 0 and "confirm-rollout" not in held.state.gates
    assert held.split.candidate_weight == 0
    (hook,) = held.state.webhooks
    assert (hook.name, hook.passed, hook.code) == ("go", False, None)
    assert hook.message.startswith("no answer")
    assert held.due == NOW + dt.timedelta(seconds=10)  # asked again at the next interval


def test_a_failing_pre_rollout_hook_counts_towards_threshold() -> None:
    url = f"http://127.0.0.1:{closed_port()}/prepare"
    s = spec(webhooks=[{"name": "prepare", "type": "pre-rollout", "url": url, "timeout": "2s"}])
    first = progress(run(s, True, NOW), started(s))
    assert (first.state.phase, first.state.failed_checks, first.check) == ("Waiting", 1, "Failed")
    second = progress(run(s, True, NOW + dt.timedelta(seconds=10)), first.state)
    assert second.rolled_back and second.state.reason == "PreRolloutFailed"


def test_without_gates_the_first_step_starts_once_the_candidate_is_ready() -> None:
    s = spec(stepWeights=[20, 50])
    step = progress(run(s, True, NOW), started(s))
    assert (step.state.phase, step.state.step, step.state.weight) == ("Progressing", 1, 20)
    assert (step.split.stable_weight, step.split.candidate_weight) == (80, 20)
    assert step.stepped and [n.reason for n in step.notes] == ["Started"]
    assert step.due == NOW + dt.timedelta(seconds=10)


def test_metrics_without_a_provider_are_skipped_and_do_not_block() -> None:
    s = spec(
        stepWeights=[50],
        metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
    )
    first = progress(run(s, True, NOW), started(s))
    promoted = progress(run(s, True, NOW + dt.timedelta(seconds=10)), first.state)
    assert promoted.promoted and promoted.state.phase == "Succeeded"
    assert [m.verdict for m in promoted.state.metrics] == ["Skipped"]
    assert promoted.split.stable == CANDIDATE
