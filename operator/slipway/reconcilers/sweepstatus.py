"""A TuningSweep's status: the current experiment's trials, and the result ModelDeployments serve.

Two parts with different lifetimes:

* **The current experiment** (``experiment``, the trial counters, ``bestObjective``,
  ``bestTrials``): rewritten on every reconcile from what the provider reports, so a spec change
  shows the new experiment at once.
* **The result** (``bestTrial`` and ``lineage``): the best trial of the latest experiment that
  succeeded, with its model. It changes only when an experiment succeeds with a verified model,
  so while a later experiment runs, ModelDeployments keep serving the earlier result, and its
  best model reaches them (as a candidate version) once it succeeds.

Besides Ready, Progressing and Degraded, the condition ``Succeeded`` carries Katib's reason
(``ExperimentGoalReached``, ``ExperimentMaxTrialsReached``, ``ExperimentSuggestionEndReached``;
``ExperimentRunning`` or ``ExperimentFailed`` while False). Events mark transitions only.
"""

from __future__ import annotations

from typing import Any

from .base import Context, Result, problem_changed, write_status
from .conditions import Verdict, merge_conditions, utc_now

EXPERIMENT_FIELDS = (
    "experiment",
    "trials",
    "trialsPending",
    "trialsRunning",
    "trialsSucceeded",
    "trialsFailed",
    "trialsKilled",
    "trialsEarlyStopped",
    "bestObjective",
    "bestTrials",
)
RESULT_FIELDS = ("bestTrial", "lineage")
SUCCEEDED_CONDITION = "Succeeded"


def _succeeded_condition(
    previous: list[dict[str, Any]], done: bool, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    value = "True" if done else "False"
    before = next((c for c in previous if c.get("type") == SUCCEEDED_CONDITION), None)
    since = (
        before.get("lastTransitionTime")
        if before and before.get("status") == value and before.get("lastTransitionTime")
        else utc_now()
    )
    return {
        "type": SUCCEEDED_CONDITION,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def finish(
    ctx: Context,
    body: dict[str, Any],
    verdict: Verdict,
    extra: dict[str, Any],
    katib: tuple[bool, str, str] | None = None,
) -> None:
    """Write the status (``extra`` plus conditions) if it changed; announce transitions.

    ``katib``: (succeeded, reason, message) of the experiment for the Succeeded condition; None
    keeps the condition as it was.
    """
    old = body.get("status") or {}
    generation = body["metadata"].get("generation")
    previous = old.get("conditions") or []
    conditions = merge_conditions(previous, verdict, generation)
    if katib is not None:
        conditions = [c for c in conditions if c.get("type") != SUCCEEDED_CONDITION]
        conditions.append(_succeeded_condition(previous, *katib, generation))
    status = {
        **{k: None for k in (*EXPERIMENT_FIELDS, *RESULT_FIELDS)},
        **extra,
        "observedGeneration": generation,
        "phase": verdict.phase,
        "conditions": conditions,
    }
    if write_status(ctx, body, status):
        _announce(ctx, body, old, status, verdict)


def stop(ctx: Context, body: dict[str, Any], verdict: Verdict, permanent: bool) -> Result:
    """Report a problem found before the experiment could be followed; everything else stays."""
    old = body.get("status") or {}
    finish(ctx, body, verdict, {k: old.get(k) for k in (*EXPERIMENT_FIELDS, *RESULT_FIELDS)})
    return Result(permanent=verdict.message if permanent else None)


def _announce(
    ctx: Context, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any], verdict: Verdict
) -> None:
    if new.get("phase") != old.get("phase") and verdict.phase in ("Running", "Succeeded"):
        ctx.cluster.event(body, verdict.reason, verdict.message)
    before = old.get("bestTrial") or {}
    after = new.get("bestTrial") or {}
    if after and (after.get("name"), after.get("modelDigest")) != (
        before.get("name"),
        before.get("modelDigest"),
    ):
        ctx.cluster.event(
            body,
            "BestTrial",
            f"best trial {after['name']}: model {after.get('modelUri')} "
            f"({str(after.get('modelDigest'))[:19]}...)",
        )
    if verdict.degraded and problem_changed(old, new):
        ctx.cluster.event(body, verdict.reason, verdict.message, warning=True)
