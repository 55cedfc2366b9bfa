"""The floor of the operator benchmark: the operator's own API calls for N objects, without kopf.

For each ModelDeployment it creates, this process runs the operator's per-object reconcile
directly (``slipway.handlers.modeldeployment.nudge``, the path the periodic resync takes: read the
object afresh, then the reconciler) through the operator's own client layer (``slipway.k8s``), in
a thread pool as large as kopf's (``settings.execution.max_workers``, read by running the
operator's own startup handler on a fresh ``kopf.OperatorSettings``). So the calls are the
operator's by construction, whatever the reconciler does today: the children rendered by the real
serving and traffic builders, the reads before the writes, the status patch and the Event. What
is left out is everything between the API server and the reconciler: kopf's watches and queues,
its own bookkeeping patches, the periodic resync, the child-event filters.

Every call goes through ``Cluster._call``; a subclass records each one (verb and resource) for the
object being reconciled on that thread, so the bench prints the sequence the floor really made,
not a list written down once.

Run by ``run.py`` as its own process, as the operator is: it connects, prints one JSON line
(``ready``), waits for a line on stdin, creates the N objects (the same threads as for the
operator) handing each to the workers as its create returns, prints one JSON line with what it
did, and exits when stdin closes (so the bench can read its CPU time first).

    python -m benchmarks.operator.floor --kubeconfig K --config C --count N
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import kopf
from prometheus_client import REGISTRY

from slipway.config import load_config
from slipway.handlers import settings as operator_settings
from slipway.handlers.modeldeployment import nudge
from slipway.k8s import Cluster, connect
from slipway.k8s.client import APPLY
from slipway.reconcilers.base import Context

from .workload import create_all

_CALL = inspect.signature(Cluster._call)
log = logging.getLogger("floor")


def describe(method: str, path: str, query: list[tuple[str, str]], content_type: str) -> str:
    """One API call in words: ``APPLY seldondeployments``, ``PATCH modeldeployments/status``,
    ``LIST services (by label, from cache)``."""
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    plural, named, sub = rest[0], len(rest) > 1, rest[2:]
    if method == "GET":
        verb = "GET" if named else "LIST"
    elif method == "PATCH":
        verb = "APPLY" if content_type == APPLY else "PATCH"
    else:
        verb = "CREATE" if method == "POST" else method
    notes = [
        note
        for key, value, note in (
            ("labelSelector", None, "by label"),
            ("resourceVersion", "0", "from cache"),
            ("dryRun", None, "dry run"),
        )
        if any(k == key and (value is None or v == value) for k, v in query)
    ]
    text = f"{verb} {'/'.join([plural, *sub])}"
    return f"{text} ({', '.join(notes)})" if notes else text


class RecordingCluster(Cluster):
    """The operator's client, recording each call into the list its thread is working for."""

    def __init__(self, base: Cluster) -> None:
        super().__init__(base.api, base.field_manager)
        self.local = threading.local()

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        calls: list[str] | None = getattr(self.local, "calls", None)
        if calls is not None:
            bound = _CALL.bind(self, *args, **kwargs).arguments
            calls.append(
                describe(
                    bound["method"],
                    bound["path"],
                    bound.get("query") or [],
                    bound.get("content_type") or "",
                )
            )
        return super()._call(*args, **kwargs)


def kopf_workers(ctx: Context) -> int | None:
    """The size of kopf's handler thread pool as the operator configures it (None: kopf keeps
    ThreadPoolExecutor's default, which a pool built with None gets too)."""
    quiet = ctx.config.model_copy(update={"metrics_port": 0})  # the handler serves metrics too
    registry = kopf.OperatorRegistry()
    operator_settings.register(registry, Context(cluster=ctx.cluster, config=quiet))
    configured = kopf.OperatorSettings()
    # kopf has no public way to run startup handlers outside an operator; its registry does.
    for handler in registry._activities.get_all_handlers():
        if handler.activity == "startup":
            startup: Callable[..., object] = handler.fn
            startup(settings=configured, logger=log, memo=None)
    return configured.execution.max_workers


def run(ctx: Context, cluster: RecordingCluster, n: int, workers: int | None) -> dict[str, Any]:
    """Create N ModelDeployments and reconcile each once its create returns; what it did."""
    calls: list[list[str]] = [[] for _ in range(n)]
    errors: list[str] = []

    def reconcile(i: int, body: dict[str, Any]) -> None:
        cluster.local.calls = calls[i]
        try:
            nudge(ctx, [body])
        finally:
            cluster.local.calls = None

    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:

        def then(i: int, created: dict[str, Any]) -> Future[None]:
            return pool.submit(reconcile, i, created)

        futures = create_all(cluster, n, then)
        created = time.monotonic()
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # reported, and the bench's convergence check then fails
                errors.append(f"{type(exc).__name__}: {exc}")
    finished = time.monotonic()
    variants = Counter(tuple(c) for c in calls).most_common()
    return {
        "started": start,
        "created": created,
        "finished": finished,
        "reconciles": sum(
            _sample("slipway_reconcile_total", result=r)
            for r in ("success", "gone", "invalid", "error")
        ),
        "reconcile_seconds": _sample("slipway_reconcile_time_seconds_sum"),
        "workers": workers,
        "per_object": list(variants[0][0]) if variants else [],
        "variants": [[list(seq), count] for seq, count in variants],
        "errors": errors[:5],
        "error_count": len(errors),
    }


def _sample(name: str, **labels: str) -> float:
    """A sample of the operator's own ModelDeployment metrics, as counted in this process."""
    return REGISTRY.get_sample_value(name, {"kind": "ModelDeployment", **labels}) or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--config", required=True, help="the operator's configuration file")
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    config = load_config(args.config).model_copy(update={"metrics_port": 0})
    base = connect(args.kubeconfig, field_manager=config.field_manager)
    cluster = RecordingCluster(base)
    ctx = Context(cluster=cluster, config=config)
    workers = kopf_workers(ctx)
    print(json.dumps({"ready": True, "workers": workers}), flush=True)
    sys.stdin.readline()
    print(json.dumps(run(ctx, cluster, args.count, workers)), flush=True)
    sys.stdin.read()  # stay alive (and measurable) until the bench is done with this process


if __name__ == "__main__":
    main()
