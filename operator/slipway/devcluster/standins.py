"""The stand-ins' supervisor: one background process that plays Seldon and the Istio ingress.

``python -m slipway.devcluster.standins --kubeconfig K --state DIR --port P --python PY``, started
by ``slipway dev up`` (``DevCluster.start_standins``). One asyncio loop runs both stand-ins:

- every ``--interval`` seconds (0.5) it lists SeldonDeployments, VirtualServices,
  DestinationRules and Services in all namespaces through ``slipway.k8s`` (a poll rather than a
  watch: four cheap LISTs on a local API server, and nothing to resume after a dropped watch);
- the Seldon stand-in (``seldon_standin.py``) converges its model-server processes on the
  SeldonDeployments and writes their status;
- the Istio ingress stand-in (``ingress.py``) gets a new routing table when the objects or the
  ready processes changed, so a VirtualService change is followed within a second;
- ``<state>/standins.json`` lists the ingress and every model-server process (version, port, pid,
  phase, log) for ``slipway dev status``; ``<state>/model-server-targets.json`` lists the running
  ones in Prometheus's file-based service discovery format, for a local Prometheus to scrape.

The model servers are children in this process's group, so ``slipway dev down`` (which signals the
group) stops them too; on SIGTERM the supervisor also stops them itself and removes the state file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from slipway.k8s import ApiError, Cluster, connect

from .cluster import DevCluster, free_port
from .ingress import Ingress
from .model_servers import default_store, model_server_python
from .paths import repo_root
from .routing import RoutingTable
from .seldon_standin import SELDON_API, SELDON_KIND, SeldonStandIn

log = logging.getLogger("slipway.standins")

ISTIO_API = "networking.istio.io/v1"
STATE_FILE = "standins.json"
TARGETS_FILE = "model-server-targets.json"  # Prometheus file-based service discovery


def _write_atomically(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def read_state(state: Path) -> dict[str, Any] | None:
    """The stand-ins' last report in a dev cluster's state folder, or None."""
    path = state / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


async def _list_all(cluster: Cluster) -> tuple[list[dict[str, Any]], ...]:
    kinds = [
        (SELDON_API, SELDON_KIND),
        (ISTIO_API, "VirtualService"),
        (ISTIO_API, "DestinationRule"),
        ("v1", "Service"),
    ]
    found = await asyncio.gather(*(asyncio.to_thread(_list, cluster, *kind) for kind in kinds))
    return tuple(found)


def _list(cluster: Cluster, api_version: str, kind: str) -> list[dict[str, Any]]:
    """All objects of a kind; none when its CRD is not installed (nothing to play then)."""
    try:
        return cluster.list(api_version, kind, None)
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def _fingerprint(objects: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            (o["metadata"].get("uid", ""), o["metadata"].get("resourceVersion", ""))
            for o in objects
        )
    )


class Supervisor:
    """Runs both stand-ins on one loop until stopped."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state)
        self.cluster = connect(args.kubeconfig, field_manager="slipway-standins")
        self.ingress = Ingress(args.host, args.port)
        self.stop = asyncio.Event()
        self._routing_key: Any = None
        self._written: Any = None

    def _write_state(self, seldon: SeldonStandIn) -> None:
        processes = seldon.processes()
        report = {
            "pid": os.getpid(),
            "ingress": {"url": self.ingress.url, "port": self.ingress.port},
            "modelServers": processes,
        }
        if report == self._written:
            return
        targets = [
            {
                "targets": [f"127.0.0.1:{row['port']}"],
                "labels": {
                    "namespace": row["namespace"],
                    "seldon_deployment": row["seldonDeployment"],
                    "predictor": row["predictor"],
                },
            }
            for row in processes
            if row["phase"] != "Exited"
        ]
        _write_atomically(self.state / TARGETS_FILE, targets)
        _write_atomically(self.state / STATE_FILE, report)
        self._written = report

    def _route(self, objects: tuple[list[dict[str, Any]], ...], seldon: SeldonStandIn) -> None:
        _, virtual_services, rules, services = objects
        endpoints = seldon.endpoints()
        key = (
            _fingerprint(virtual_services),
            _fingerprint(rules),
            _fingerprint(services),
            tuple((e.namespace, e.port, tuple(sorted(e.labels.items()))) for e in endpoints),
        )
        if key == self._routing_key:
            return
        table = RoutingTable(virtual_services, rules, services, endpoints, self.args.cluster_domain)
        self.ingress.update(table)
        self._routing_key = key

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        logs = self.state / "logs" / "model-servers"
        async with aiohttp.ClientSession() as probes:
            seldon = SeldonStandIn(
                self.cluster,
                Path(self.args.python),
                Path(self.args.server_source),
                logs,
                Path(self.args.store),
                probes,
            )
            await self.ingress.start()
            try:
                await self._loop(seldon)
            finally:
                log.info("stopping the stand-ins")
                await self.ingress.stop()
                await seldon.close()
                (self.state / STATE_FILE).unlink(missing_ok=True)
                _write_atomically(self.state / TARGETS_FILE, [])

    async def _loop(self, seldon: SeldonStandIn) -> None:
        while not self.stop.is_set():
            try:
                objects = await _list_all(self.cluster)
            except ApiError as exc:
                log.warning("listing objects failed (retrying): %s", exc)
            else:
                try:
                    await seldon.sync(objects[0])
                    self._route(objects, seldon)
                    seldon.stop_retired()  # only once the ingress no longer sends them requests
                    await seldon.report(objects[0])
                except Exception:  # a bug must not take the model servers down with it
                    log.exception("stand-in pass failed (retrying)")
            self._write_state(seldon)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.args.interval)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m slipway.devcluster.standins", description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--state", required=True, help="folder for standins.json and the logs")
    p.add_argument("--port", type=int, required=True, help="the ingress's loopback port")
    p.add_argument("--host", default="127.0.0.1", help="the ingress's listen address")
    p.add_argument("--python", required=True, help="the model server environment's python")
    p.add_argument(
        "--server-source",
        default=str(repo_root() / "images" / "model-server" / "src"),
        help="folder holding the slipway_model_server package",
    )
    p.add_argument("--store", default=str(default_store()), help="local store (pvc://<claim>/...)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    p.add_argument("--cluster-domain", default="cluster.local")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args = parser().parse_args(argv)
    asyncio.run(Supervisor(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())


DEFAULT_INGRESS_PORT = 8080


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def launch(dev: DevCluster, port: int | None = None, timeout: float = 60.0) -> str:
    """Start the stand-ins for ``slipway dev up``; returns the ingress URL once it listens.

    The port is ``port``, else 8080 when free, else any free loopback port. The model server's
    environment is created first if it does not exist yet (once per machine).
    """
    python = model_server_python()
    if port is None:
        port = DEFAULT_INGRESS_PORT if _port_free(DEFAULT_INGRESS_PORT) else free_port()
    (dev.state / STATE_FILE).unlink(missing_ok=True)
    dev.start_standins(port, python)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = read_state(dev.state)
        if report is not None:
            return str(report["ingress"]["url"])
        if "standins" not in dev.running():
            break
        time.sleep(0.2)
    raise RuntimeError(f"the stand-ins did not start; see {dev.state / 'logs' / 'standins.log'}")


def ingress_url(dev: DevCluster) -> str | None:
    """The ingress's URL while the stand-ins run, else None."""
    report = read_state(dev.state)
    if report is None or "standins" not in dev.running():
        return None
    return str(report["ingress"]["url"])


def status_lines(dev: DevCluster) -> list[str]:
    """The ingress and each model-server process, for ``slipway dev status``."""
    report = read_state(dev.state)
    if report is None or "standins" not in dev.running():
        return []
    lines = [f"{'ingress':<24} {report['ingress']['url']}"]
    for server in report.get("modelServers") or []:
        where = f"{server['namespace']}/{server['seldonDeployment']}"
        lines.append(
            f"{'model-server':<24} {where} version {server['version']} port {server['port']} "
            f"pid {server['pid']} {server['phase']} ({server['role']}) log {server['log']}"
        )
    return lines
