"""Progressive rollouts (Canary, ABTest, Shadow): what one reconcile does for a rollout under way.

The ModelDeployment reconcile calls ``progress`` after it applied and observed every version's
deployment. The rollout's whole memory is ``status.rollout`` (phase, step, counters, gates passed,
next check time), so a reconcile at any moment, by any replica, after any restart, continues from
where the last status write left it; a gate recorded as passed is never asked again.

One reconcile does at most one thing: wait (candidate not ready, a gate closed, the next check not
due), start (every gate before the first step passed), or run one check (rollback webhooks,
metrics, rollout webhooks) and act on it: stay, step, hold, promote (once confirm-promotion agrees)
or roll back. When the next check is due is returned (``due``, a time): the operator's one
scheduling loop reconciles the object then (no per-object timer, hence no finalizer).

An unreachable analysis provider holds the rollout and retries at the next interval; it is never a
failed check. Webhook answers and metric results are recorded with their time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.api.v1alpha1.rollout import (
    DEFAULT_PROGRESS_DEADLINE_S,
    Analysis,
    MetricResult,
    RolloutStatus,
    Webhook,
    WebhookResult,
)
from slipway.backends import AnalysisBackend, AnalysisUnavailable, QueryRejected, Target
from slipway.backends import webhooks as hooks
from slipway.backends.serving import VersionState
from slipway.builders import analysis as judge
from slipway.builders.meta import Owner, app_label
from slipway.builders.rollout import Live, ModelVersion, Split, seconds


@dataclass(frozen=True)
class Note:
    """Something to announce once the status is written: an Event, and what it counts."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class Progress:
    """What one reconcile decided for a rollout."""

    state: RolloutStatus
    split: Split
    promoted: bool = False
    rolled_back: bool = False
    check: str | None = None  # Passed, Failed, Inconclusive, Unavailable: a check ran
    lateness: float | None = None  # seconds between a check's due time and its run
    stepped: bool = False
    due: dt.datetime | None = None  # when to reconcile again (the next check, a deadline)
    notes: list[Note] = field(default_factory=list)


def _version_info(v: ModelVersion) -> dict[str, Any]:
    return {"version": v.version, "modelUri": v.uri, "modelDigest": v.digest}


def _record(state: RolloutStatus, results: list[WebhookResult]) -> RolloutStatus:
    """Keep the last outcome of every webhook, replacing older ones of the same name."""
    names = {r.name for r in results}
    kept = [w for w in state.webhooks if w.name not in names]
    return state.model_copy(update={"webhooks": kept + results})


@dataclass
class RolloutRun:
    """One reconcile's view of a rollout: the inputs, and the I/O (webhooks, metrics)."""

    owner: Owner
    spec: ModelDeploymentSpec
    live: Live
    candidate_state: VersionState
    backend: AnalysisBackend
    now: dt.datetime
    generation: int | None

    @property
    def analysis(self) -> Analysis:
        return self.spec.rollout.analysis or Analysis()

    @property
    def candidate(self) -> ModelVersion:
        assert self.live.candidate is not None
        return self.live.candidate

    @property
    def target(self) -> Target:
        return Target(
            namespace=self.owner.namespace,
            name=self.owner.name,
            model=app_label(self.owner),
            version=self.candidate.version,
            stable=self.live.stable.version,
        )

    def hooks(self, kind: str) -> list[Webhook]:
        return [h for h in self.analysis.webhooks or [] if h.type == kind]

    def call(self, kind: str, state: RolloutStatus) -> tuple[RolloutStatus, list[WebhookResult]]:
        """Call every hook of ``kind`` in order; record and return their outcomes."""
        versions = {
            "stable": _version_info(self.live.stable),
            "candidate": _version_info(self.candidate),
        }
        results = []
        for hook in self.hooks(kind):
            body = hooks.payload(hook, self.target, state, versions)
            answer = hooks.call(hook.url, body, seconds(hook.timeout))
            results.append(
                WebhookResult(
                    name=hook.name,
                    type=hook.type,
                    passed=answer.passed,
                    code=answer.code,
                    message=answer.message,
                    time=judge.timestamp(self.now),
                )
            )
        return _record(state, results), results

    def measure(self) -> list[MetricResult]:
        """Every metric's result; raises AnalysisUnavailable or QueryRejected."""
        results = []
        samples: dict[str, float] = {}  # one sample-size query per window
        for metric in self.analysis.metrics or []:
            if not self.backend.measures:
                results.append(judge.skipped_metric(metric, self.now))
                continue
            if metric.interval not in samples:
                found = self.backend.sample_size(self.target, metric.interval)
                samples[metric.interval] = found or 0.0  # no series at all: no requests
            sample = samples[metric.interval]
            value = self.backend.measure(metric, self.target)
            results.append(
                judge.judge_metric(metric, value, sample, self.analysis.min_sample_size, self.now)
            )
        return results

    # ---- outcomes ----------------------------------------------------------------------------

    def waiting(self, state: RolloutStatus, after: float | None = None) -> Progress:
        """Stay as ``state`` says; reconcile again in ``after`` seconds, else at its next check."""
        split = judge.progressive_split(self.live, state, self.spec.rollout)
        if after is not None:
            due = self.now + dt.timedelta(seconds=after)
        else:
            interval = dt.timedelta(seconds=seconds(self.analysis.interval))
            due = judge.parse_time(state.next_check_time) or self.now + interval
        return Progress(state, split, due=due)

    def end(self, state: RolloutStatus, promoted: bool, reason: str, message: str) -> Progress:
        """Promote or roll back now, then tell the post-rollout hooks (once)."""
        state = judge.finished(state, promoted, reason, message)
        state = state.model_copy(update={"generation": self.generation})
        if "post-rollout" not in state.gates:
            state, _ = self.call("post-rollout", state)
            state = state.model_copy(update={"gates": [*state.gates, "post-rollout"]})
        stable, candidate = self.live.stable, self.candidate
        if promoted:
            split = Split(candidate, 100, None, 0, promoted=True)
            note = Note("Succeeded", f"promoted {candidate.version}: {message}")
        else:
            split = Split(stable, 100, None, 0)
            note = Note(
                "RolledBack",
                f"rolled back {candidate.version}, {stable.version} serves 100%: {message}",
                warning=True,
            )
        return Progress(state, split, promoted=promoted, rolled_back=not promoted, notes=[note])


def progress(run: RolloutRun, state: RolloutStatus) -> Progress:
    """One reconcile's progress of the rollout ``state`` (not finished) of ``run.candidate``."""
    analysis, now = run.analysis, run.now
    state = state.model_copy(update={"steps": judge.total_steps(state.strategy, analysis)})
    if run.candidate_state.failed:
        detail = f"candidate {run.candidate.version} failed: {run.candidate_state.detail}"
        return run.end(state, False, "CandidateFailed", detail)
    if state.phase == "Waiting":
        return _before_traffic(run, state)
    due = judge.parse_time(state.next_check_time) or now
    if now < due:
        return run.waiting(state)
    lateness = (now - due).total_seconds()
    result = _check(run, state)
    result.lateness = lateness
    return result


def _before_traffic(run: RolloutRun, state: RolloutStatus) -> Progress:
    analysis, now = run.analysis, run.now
    if not run.candidate_state.ready:
        started = judge.parse_time(state.started_at) or now
        limit = run.spec.rollout.progress_deadline_seconds or DEFAULT_PROGRESS_DEADLINE_S
        deadline = started + dt.timedelta(seconds=limit)
        if now >= deadline:
            message = (
                f"candidate {run.candidate.version} not ready after {limit} s: "
                f"{run.candidate_state.detail}"
            )
            return run.end(state, False, "ProgressDeadlineExceeded", message)
        state = state.model_copy(
            update={
                "reason": "CandidateNotReady",
                "message": f"candidate {run.candidate.version}: {run.candidate_state.detail}",
            }
        )
        return run.waiting(state, (deadline - now).total_seconds())
    due = judge.parse_time(state.next_check_time)
    if due is not None and now < due:
        return run.waiting(state)
    notes = []
    for gate in ("confirm-rollout", "pre-rollout"):
        if gate in state.gates or not run.hooks(gate):
            continue
        state, results = run.call(gate, state)
        failed = [f"{r.name}: {r.message}" for r in results if not r.passed]
        if not failed:
            state = state.model_copy(update={"gates": [*state.gates, gate]})
            notes.append(Note("GatePassed", f"{gate} webhooks passed"))
            continue
        update: dict[str, Any] = {
            "next_check_time": judge.next_check(analysis, now),
            "message": f"{gate} webhook {'; '.join(failed)}",
        }
        if gate == "confirm-rollout":
            update["reason"] = "WaitingForConfirmation"
            held = run.waiting(state.model_copy(update=update))
            held.notes = notes
            return held
        failures = state.failed_checks + 1
        update |= {"failed_checks": failures, "reason": "PreRolloutFailed"}
        state = state.model_copy(update=update)
        if failures >= analysis.threshold:
            ended = run.end(state, False, "PreRolloutFailed", state.message)
            ended.notes[:0] = notes
            return ended
        waiting = run.waiting(state)
        waiting.notes = [*notes, Note("PreRolloutFailed", state.message, warning=True)]
        waiting.check = "Failed"
        return waiting
    state = judge.begin(state, analysis, now)
    begun = run.waiting(state)
    begun.notes = [*notes, Note("Started", state.message)]
    begun.stepped = True
    return begun


def _check(run: RolloutRun, state: RolloutStatus) -> Progress:
    """Run the due check and act on it."""
    analysis, now = run.analysis, run.now
    state, aborts = run.call("rollback", state)
    for answer in aborts:
        if answer.passed:
            message = f"rollback webhook {answer.name} answered {answer.message}"
            ended = run.end(state, False, "RollbackRequested", message)
            ended.check = "Aborted"
            return ended
    try:
        metrics = run.measure()
    except (AnalysisUnavailable, QueryRejected) as exc:
        unavailable = isinstance(exc, AnalysisUnavailable)
        reason = "AnalysisUnavailable" if unavailable else "MetricQueryInvalid"
        message = f"holding: {exc}"
        fresh = state.reason != reason
        state = state.model_copy(
            update={
                "reason": reason,
                "message": message,
                "last_check_time": judge.timestamp(now),
                "next_check_time": judge.next_check(analysis, now),
            }
        )
        held = run.waiting(state)
        held.check = "Unavailable"
        held.notes = [Note(reason, message, warning=True)] if fresh else []
        return held
    state, rollout_hooks = run.call("rollout", state)
    outcome, message = judge.check_outcome(metrics, rollout_hooks)
    before = state.phase
    state, action = judge.after_check(state, outcome, message, analysis, now)
    state = state.model_copy(update={"metrics": metrics})
    if action == "rollback":
        reason = "AnalysisFailed" if outcome == "Failed" else "AnalysisInconclusive"
        ended = run.end(state, False, reason, state.message)
        ended.check = outcome
        return ended
    if action == "promote":
        state, confirmations = run.call("confirm-promotion", state)
        refused = [f"{r.name}: {r.message}" for r in confirmations if not r.passed]
        if not refused:
            ended = run.end(state, True, "Promoted", message)
            ended.check = outcome
            return ended
        state = judge.waiting_promotion(
            state, f"{message}; waiting for confirm-promotion ({'; '.join(refused)})"
        )
    result = run.waiting(state)
    result.check = outcome
    result.stepped = action == "advance"
    progress_word = (
        f"step {state.step}/{state.steps}"
        if state.strategy == "Canary"
        else (f"check {state.iterations}/{state.steps}")
    )
    if action == "advance":
        note = Note("Advanced", f"{progress_word}: candidate at {state.weight}% ({message})")
    elif action == "hold":
        note = Note("Holding", state.message, warning=True)
    elif state.phase == "WaitingPromotion" and before != "WaitingPromotion":
        note = Note("WaitingPromotion", state.message)
    elif outcome == "Failed":
        note = Note("CheckFailed", state.message, warning=True)
    elif outcome == "Inconclusive":
        note = Note("CheckInconclusive", state.message)
    else:
        note = Note("CheckPassed", f"{progress_word}: {message}")
    result.notes = [note]
    return result
