"""Prometheus metrics of the operator, named after controller-runtime's.

``slipway_reconcile_total{kind,result}``, ``slipway_reconcile_time_seconds{kind}`` and
``slipway_reconcile_errors_total{kind}`` let the same dashboards and alerts that watch
controller-runtime operators watch this one. ``slipway_rollout_*`` count what progressive
rollouts do (steps, checks by result, promotions, rollbacks) and how late their checks run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, start_http_server

RECONCILE_TOTAL = Counter(
    "slipway_reconcile_total", "Reconciliations per kind and result.", ["kind", "result"]
)
RECONCILE_ERRORS = Counter(
    "slipway_reconcile_errors_total", "Reconciliations that raised an error.", ["kind"]
)
RECONCILE_TIME = Histogram(
    "slipway_reconcile_time_seconds",
    "Time spent in one reconciliation.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Progressive rollouts (Canary, ABTest, Shadow): what happens to them, and how punctually the one
# scheduling loop runs their checks (lateness: from a check's due time to the check).
ROLLOUT_STEPS = Counter(
    "slipway_rollout_steps_total", "Rollout steps taken (traffic moved).", ["strategy"]
)
ROLLOUT_CHECKS = Counter(
    "slipway_rollout_checks_total",
    "Rollout analysis checks by result (Passed, Failed, Inconclusive, Unavailable, Aborted).",
    ["strategy", "result"],
)
ROLLOUT_INCONCLUSIVE = Counter(
    "slipway_rollout_inconclusive_checks_total",
    "Rollout checks that were inconclusive (too few requests, no data, NaN).",
    ["strategy"],
)
ROLLOUT_PROMOTIONS = Counter(
    "slipway_rollout_promotions_total", "Candidates promoted by analysis.", ["strategy"]
)
ROLLOUT_ROLLBACKS = Counter(
    "slipway_rollout_rollbacks_total", "Candidates rolled back, by reason.", ["strategy", "reason"]
)
ROLLOUT_CHECK_LATENESS = Histogram(
    "slipway_rollout_check_lateness_seconds",
    "Seconds between a rollout check's due time and the moment it ran.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class Outcome:
    """Set by the caller inside ``observe`` to label the reconciliation's result."""

    def __init__(self) -> None:
        self.result = "success"


@contextmanager
def observe(kind: str) -> Iterator[Outcome]:
    """Count and time one reconciliation; an exception counts as an error."""
    outcome = Outcome()
    start = time.perf_counter()
    try:
        yield outcome
    except Exception:
        RECONCILE_ERRORS.labels(kind).inc()
        RECONCILE_TOTAL.labels(kind, "error").inc()
        raise
    else:
        RECONCILE_TOTAL.labels(kind, outcome.result).inc()
    finally:
        RECONCILE_TIME.labels(kind).observe(time.perf_counter() - start)


def serve(port: int) -> None:
    """Expose /metrics on ``port`` (0 disables it)."""
    if port:
        start_http_server(port)
