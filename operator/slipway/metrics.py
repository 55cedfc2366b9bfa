"""Prometheus metrics of the operator, named after controller-runtime's.

``slipway_reconcile_total{kind,result}``, ``slipway_reconcile_time_seconds{kind}`` and
``slipway_reconcile_errors_total{kind}`` let the same dashboards and alerts that watch
controller-runtime operators watch this one.
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
