"""A ModelDeployment's status around its rollouts: what status remembers, and what is announced.

Read back at the start of a reconcile: the version kept after the last promotion (while its
keepPrevious window lasts) and the rollout record (``status.rollout``). Written at its end: the
conditions while a rollout is under way or after it ended (the stable version serves throughout,
so ``Ready`` stays True and a rollback is not ``Degraded``), the kind-specific ``RolledBack``
condition, and the ``slipway_rollout_*`` metrics, counted once the status write succeeded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from slipway import metrics
from slipway.api.v1alpha1.rollout import RolloutStatus
from slipway.builders import analysis as plan
from slipway.builders.rollout import ModelVersion, version_lineage

from .conditions import Verdict, utc_now
from .rollout import Progress


def recorded(entry: dict[str, Any] | None) -> ModelVersion | None:
    """A version as status records it."""
    if not entry:
        return None
    return ModelVersion(
        entry["modelUri"],
        entry["modelDigest"],
        id=entry.get("version", ""),
        lineage=version_lineage(entry.get("lineage")),
    )


def previous_version(
    old: dict[str, Any], now: dt.datetime
) -> tuple[ModelVersion | None, str | None]:
    """The version kept after the last promotion, while its keepPrevious window lasts."""
    entry = old.get("previous") or {}
    until = plan.parse_time(entry.get("keepUntil"))
    if until is None or until <= now:
        return None, None
    return recorded(entry), entry["keepUntil"]


def record_of(old: dict[str, Any]) -> RolloutStatus | None:
    try:
        return RolloutStatus.model_validate(old["rollout"]) if old.get("rollout") else None
    except ValidationError:
        return None  # written by another release: start afresh


def verdict(state: RolloutStatus, stable: ModelVersion) -> Verdict:
    """Ready / Progressing / Degraded while a rollout is under way or after it ended (the stable
    version serves throughout, so Ready stays True; a rollback is not Degraded)."""
    if state.phase == "Failed":
        return Verdict(
            "RolledBack",
            True,
            state.reason,
            f"candidate {state.candidate} rolled back ({state.reason}): {state.message}; "
            f"{stable.version} serves 100%",
        )
    if state.phase == "Succeeded":
        return Verdict(
            "Ready",
            True,
            "Available",
            f"version {stable.version} serves 100% (promoted by {state.strategy} analysis)",
        )
    return Verdict(
        state.phase,
        True,
        state.reason or state.phase,
        f"{state.strategy} {state.candidate}: {state.message}",
        progressing=True,
    )


def rolled_back_condition(state: RolloutStatus | None) -> tuple[bool, str, str] | None:
    """The RolledBack condition (status, reason, message), once any rollout ran."""
    if state is None:
        return None
    if state.phase == "Failed":
        return True, state.reason, f"candidate {state.candidate} rolled back: {state.message}"
    return False, "NotRolledBack", ""


def with_rolled_back(
    conditions: list[dict[str, Any]], rollout: dict[str, Any] | None, generation: int | None
) -> list[dict[str, Any]]:
    """Set the RolledBack condition (present once a rollout ran) without churning its time."""
    state = record_of({"rollout": rollout})
    wanted = rolled_back_condition(state)
    if wanted is None:
        return conditions
    status, reason, message = wanted
    value = "True" if status else "False"
    before = next((c for c in conditions if c.get("type") == "RolledBack"), None)
    since = (
        before.get("lastTransitionTime", utc_now())
        if before is not None and before.get("status") == value
        else utc_now()
    )
    condition = {
        "type": "RolledBack",
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }
    return [c for c in conditions if c.get("type") != "RolledBack"] + [condition]


def count(step: Progress) -> None:
    """The rollout's operator metrics, counted once its status is written."""
    strategy = step.state.strategy
    if step.lateness is not None:
        metrics.ROLLOUT_CHECK_LATENESS.observe(step.lateness)
    if step.check is not None:
        metrics.ROLLOUT_CHECKS.labels(strategy, step.check).inc()
        if step.check == "Inconclusive":
            metrics.ROLLOUT_INCONCLUSIVE.labels(strategy).inc()
    if step.stepped:
        metrics.ROLLOUT_STEPS.labels(strategy).inc()
    if step.promoted:
        metrics.ROLLOUT_PROMOTIONS.labels(strategy).inc()
    if step.rolled_back:
        metrics.ROLLOUT_ROLLBACKS.labels(strategy, step.state.reason).inc()
