"""Run the kopf operator: connect, register handlers, start kopf with peering and liveness.

``run_operator`` blocks (the CLI); ``start_in_thread`` runs the same operator in a thread with a
stop flag (the integration tests and the benchmark).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

import kopf

from slipway.config import OperatorConfig
from slipway.handlers import Peering, register
from slipway.k8s import connect
from slipway.reconcilers.base import Context

PEERING = "slipway"
log = logging.getLogger("slipway")


def _registry(
    config: OperatorConfig, kubeconfig: str | None = None, peering: Peering | None = None
) -> tuple[kopf.OperatorRegistry, Context]:
    cluster = connect(kubeconfig, field_manager=config.field_manager, guarded=True)
    ctx = Context(cluster=cluster, config=config)
    registry = kopf.OperatorRegistry()
    register(registry, ctx, peering)
    return registry, ctx


def _scope(config: OperatorConfig) -> dict[str, object]:
    if config.namespace:
        return {"namespaces": [config.namespace]}
    return {"clusterwide": True}


def run_operator(config: OperatorConfig, standalone: bool = False, priority: int = 0) -> None:
    """Run until interrupted. With peering, only the highest-priority replica acts."""
    registry, _ = _registry(config, peering=None if standalone else Peering(PEERING, priority))
    kopf.run(
        registry=registry,
        standalone=standalone,
        priority=priority,
        peering_name=None if standalone else PEERING,
        liveness_endpoint=f"http://0.0.0.0:{config.health_port}/healthz"
        if config.health_port
        else None,
        **_scope(config),  # type: ignore[arg-type]
    )


@dataclass
class RunningOperator:
    """An operator running in a background thread."""

    thread: threading.Thread
    stop_flag: threading.Event
    ctx: Context

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_flag.set()
        self.thread.join(timeout)


def start_in_thread(
    config: OperatorConfig, kubeconfig: str | None = None, ready_timeout: float = 60.0
) -> RunningOperator:
    """Start a standalone operator in a thread and wait until it is watching."""
    registry, ctx = _registry(config, kubeconfig)
    stop_flag, ready_flag = threading.Event(), threading.Event()

    def main() -> None:
        asyncio.run(
            kopf.operator(
                registry=registry,
                standalone=True,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
                **_scope(config),  # type: ignore[arg-type]
            )
        )

    thread = threading.Thread(target=main, name="slipway-operator", daemon=True)
    thread.start()
    if not ready_flag.wait(ready_timeout):
        stop_flag.set()
        raise RuntimeError("the operator did not start in time")
    return RunningOperator(thread, stop_flag, ctx)
