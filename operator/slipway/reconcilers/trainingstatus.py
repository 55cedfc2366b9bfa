"""A TrainingJob's status: written only when it changes, announced with Events on transitions.

Every field about a run (``run``, ``fingerprint``, ``model``, ``metrics``, ``history``,
``reusedFrom``, the times and the lineage) describes the generation in ``status.run.generation``
(or, for a reused model, the generation that reused it). A problem found before the current
generation has a run clears them, so a status never shows an older spec's model as this one's.
"""

from __future__ import annotations

from typing import Any

from .base import Context, Result, problem_changed, write_status
from .conditions import Verdict, merge_conditions

RUN_FIELDS = (
    "fingerprint",
    "run",
    "startTime",
    "completionTime",
    "history",
    "metrics",
    "model",
    "reusedFrom",
    "lineage",
)


def finish(ctx: Context, body: dict[str, Any], verdict: Verdict, extra: dict[str, Any]) -> None:
    """Write the status (``extra`` plus conditions) if it changed, and announce transitions."""
    old = body.get("status") or {}
    generation = body["metadata"].get("generation")
    status = {
        **{k: None for k in RUN_FIELDS},
        **extra,
        "observedGeneration": generation,
        "phase": verdict.phase,
        "conditions": merge_conditions(old.get("conditions") or [], verdict, generation),
    }
    if write_status(ctx, body, status):
        _announce(ctx, body, old, status, verdict)


def stop(ctx: Context, body: dict[str, Any], verdict: Verdict, permanent: bool) -> Result:
    """Report a problem found before the run could be followed.

    The run fields stay when they belong to the current generation, and are cleared otherwise.
    """
    old = body.get("status") or {}
    generation = body["metadata"].get("generation")
    current = (old.get("run") or {}).get("generation") == generation or (
        old.get("reusedFrom") and old.get("observedGeneration") == generation
    )
    finish(ctx, body, verdict, {k: old.get(k) for k in RUN_FIELDS} if current else {})
    return Result(permanent=verdict.message if permanent else None)


def _announce(
    ctx: Context, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any], verdict: Verdict
) -> None:
    """Events for transitions only: a run starts training, a model is published, a new problem."""
    if new.get("phase") != old.get("phase") and verdict.phase in ("Running", "Succeeded"):
        ctx.cluster.event(body, verdict.reason, verdict.message)
    if verdict.degraded and problem_changed(old, new):
        ctx.cluster.event(body, verdict.reason, verdict.message, warning=True)
