"""Kubernetes-style conditions: build them and merge them into a status without churn.

``lastTransitionTime`` changes only when a condition's status changes, so recomputing the same
conditions produces an identical status and the reconciler writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Verdict:
    """The three standard conditions, decided together so they never contradict each other."""

    phase: str
    ready: bool
    reason: str
    message: str
    progressing: bool = False
    degraded: bool = False

    def conditions(self) -> list[tuple[str, bool, str, str]]:
        """(type, status, reason, message) of Ready, Progressing and Degraded."""
        m = self.message
        return [
            (READY, self.ready, "Available" if self.ready else self.reason, m),
            (
                PROGRESSING,
                self.progressing,
                self.reason if self.progressing else "Stable",
                m if self.progressing else "",
            ),
            (
                DEGRADED,
                self.degraded,
                self.reason if self.degraded else "AsExpected",
                m if self.degraded else "",
            ),
        ]


def merge_conditions(
    previous: list[dict[str, Any]],
    verdict: Verdict,
    generation: int | None,
    now: Callable[[], str] = utc_now,
) -> list[dict[str, Any]]:
    """The new conditions list; unchanged conditions keep their transition time."""
    old = {c.get("type"): c for c in previous}
    out = []
    for type_, status, reason, message in verdict.conditions():
        value = "True" if status else "False"
        before = old.get(type_)
        changed = before is None or before.get("status") != value
        since = now() if changed or before is None else before.get("lastTransitionTime", now())
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    others = [c for c in previous if c.get("type") not in {READY, PROGRESSING, DEGRADED}]
    return out + others
