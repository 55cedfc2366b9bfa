"""The ingress stand-in as its own process, routing one model to one model server.

``make dev`` runs the ingress inside the stand-in supervisor, with a routing table built from the
objects the operator wrote. The benchmark has no API server: this module builds the same table
from the objects the ``istio`` traffic provider renders for one live version (a Service selecting
``app=<model>``, a DestinationRule with one subset selected by ``version``, a VirtualService
sending 100 % to that subset) and one endpoint, the model server's loopback port, then serves
until SIGTERM or SIGINT. A process of its own, so that the ingress gets its own event loop and
its CPU is measured apart from the load generator's.

    python -m benchmarks.ingress.serve_ingress --port P --upstream-port Q --model digits
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from slipway.devcluster.ingress import Ingress
from slipway.devcluster.routing import Endpoint, RoutingTable

NAMESPACE = "bench"
VERSION = "v1"
DOMAIN = "cluster.local"


def routing_table(model: str, upstream_port: int) -> RoutingTable:
    """One Service, DestinationRule and VirtualService, as the operator renders them for one
    version, and the one ready endpoint they select."""
    host = f"{model}.{NAMESPACE}.svc.{DOMAIN}"
    meta = {"name": model, "namespace": NAMESPACE}
    service = {"metadata": meta, "spec": {"selector": {"app": model}}}
    rule = {
        "metadata": meta,
        "spec": {"host": host, "subsets": [{"name": VERSION, "labels": {"version": VERSION}}]},
    }
    route = {"destination": {"host": host, "subset": VERSION}, "weight": 100}
    virtual_service = {
        "metadata": meta,
        "spec": {"hosts": [host], "http": [{"name": "inference", "route": [route]}]},
    }
    endpoint = Endpoint(NAMESPACE, {"app": model, "version": VERSION}, upstream_port, model)
    return RoutingTable([virtual_service], [rule], [service], [endpoint], DOMAIN)


async def serve(port: int, table: RoutingTable) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ingress = Ingress("127.0.0.1", port)
    ingress.update(table)
    await ingress.start()
    try:
        await stop.wait()
    finally:
        await ingress.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingress.serve_ingress")
    p.add_argument("--port", type=int, required=True, help="the ingress's loopback port")
    p.add_argument("--upstream-port", type=int, required=True, help="the model server's port")
    p.add_argument("--model", required=True, help="the model's V2 name (and app label)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(serve(args.port, routing_table(args.model, args.upstream_port)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
