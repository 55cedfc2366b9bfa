"""Conditions: consistent Ready/Progressing/Degraded, and no churn when nothing changed."""

from __future__ import annotations

from slipway.reconcilers.conditions import Verdict, merge_conditions


def clock(value: str):  # type: ignore[no-untyped-def]
    return lambda: value


def test_transition_time_kept_while_status_is_unchanged() -> None:
    waiting = Verdict("Progressing", False, "WaitingForSeldon", "creating", progressing=True)
    first = merge_conditions([], waiting, 1, clock("t1"))
    again = merge_conditions(first, waiting, 1, clock("t2"))
    assert first == again
    ready = merge_conditions(again, Verdict("Ready", True, "Available", "ok"), 2, clock("t3"))
    by_type = {c["type"]: c for c in ready}
    assert by_type["Ready"]["lastTransitionTime"] == "t3"
    assert by_type["Degraded"]["lastTransitionTime"] == "t1"  # False before and after
    assert by_type["Ready"]["observedGeneration"] == 2


def test_degraded_carries_reason_and_message() -> None:
    bad = Verdict(
        "Degraded", False, "UnknownNodePool", "spec.placement.nodePool 'x'", degraded=True
    )
    by_type = {c["type"]: c for c in merge_conditions([], bad, 3, clock("t"))}
    assert by_type["Degraded"] == {
        "type": "Degraded",
        "status": "True",
        "reason": "UnknownNodePool",
        "message": "spec.placement.nodePool 'x'",
        "lastTransitionTime": "t",
        "observedGeneration": 3,
    }
    assert by_type["Ready"]["status"] == "False" and by_type["Ready"]["reason"] == "UnknownNodePool"
