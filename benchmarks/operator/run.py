"""Operator benchmark: convergence time against a floor, steady-state writes and memory.

For each size N (default 1, 100, 1000) it starts a fresh local control plane (etcd +
kube-apiserver + garbage collector on loopback) and the operator as its own process
(`slipway run --standalone`), creates N ModelDeployments and measures:

- **converge**: seconds from the first create until every ModelDeployment has all its children
  (SeldonDeployment, Service, DestinationRule, VirtualService), with the operator's default resync
  period (so no resync pass runs alongside unless `--converge-resync` asks for one);
- **steady-state writes**: after Seldon is played (each SeldonDeployment patched Available, as
  Seldon's controller would) and every ModelDeployment is Ready, the operator is restarted with the
  short `--resync` period: the API writes (POST, PUT, PATCH, APPLY, DELETE to the kinds the
  operator touches, from kube-apiserver's own request counters) until the new process has
  reconciled every object again, then during an idle window in which the periodic resync
  reconciles every object a few times (counted by the operator's slipway_reconcile_total);
- **RSS**: the operator's resident memory with N objects (the larger of the first process once
  all are Ready and the second after the idle window);
- **floor** (unless `--no-floor`): on another fresh control plane, the same creates and the
  operator's own calls for each object, made by `floor.py` with no kopf, timed by the same check.
  The ratio converge / floor is what kopf and the operator's event handling cost.

For both runs it reads what was spent while converging: CPU seconds of kube-apiserver, etcd, the
garbage collector, the client (the operator, or the floor), the bench itself and the machine as a
whole (the rest is "other": other work on the machine, and kernel time no process is charged
for), the reconciles and the time the workers spent in them, and the API requests per object.

    python -m benchmarks.operator.run [--sizes 1,100,1000] [--idle 30] [--resync 10] [--no-floor]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from slipway.config import load_config
from slipway.devcluster import DevCluster
from slipway.devcluster.cluster import free_port
from slipway.devcluster.commands import crd_folders
from slipway.devcluster.paths import repo_root
from slipway.k8s import Cluster, connect
from slipway.reconcilers.base import Context

from . import report
from .floor import kopf_workers
from .probes import CpuMeter, api_requests, api_writes, reconcile_seconds, reconciled, rss_mb
from .workload import NS, Children, create_all, ready_count, wait_for

SELDON = "machinelearning.seldon.io/v1"
TIMEOUT = 900.0


_started: list[subprocess.Popen[Any]] = []  # the operators and floors of the current cluster


@contextlib.contextmanager
def fresh_cluster(workdir: Path, name: str) -> Iterator[tuple[DevCluster, Cluster]]:
    """A fresh control plane with the bench namespace. On the way out, also after a failed step,
    every process started against it is killed if still running, then the cluster is stopped."""
    dev = DevCluster(workdir / name)
    try:
        dev.start(crds=crd_folders(repo_root()))
        kube = connect(str(dev.kubeconfig), field_manager="bench")
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield dev, kube
    finally:
        while _started:
            process = _started.pop()
            if process.poll() is None:
                process.kill()
                process.wait(30)
        dev.stop()


def write_config(path: Path, **settings: Any) -> Path:
    pools = yaml.safe_load((repo_root() / "config" / "dev.yaml").read_text())
    path.write_text(yaml.safe_dump({**pools, **settings}))
    return path


def meter(dev: DevCluster, client: int) -> CpuMeter:
    names = {"kube-apiserver": "apiserver", "etcd": "etcd", "kube-controller-manager": "gc"}
    pids = {short: dev.pids()[name] for name, short in names.items() if name in dev.pids()}
    return CpuMeter({"client": client, "bench": os.getpid(), **pids})


def converge(
    kube: Cluster,
    children: Children,
    cpu: CpuMeter,
    n: int,
    go: Callable[[], None] | None = None,
    reconciles: Callable[[], tuple[float, float]] = lambda: (0.0, 0.0),
) -> dict[str, Any]:
    """Time from the first create (by ``go``, or by this process) until every child exists, with
    the CPU, API requests and reconciles (count, seconds in them) spent meanwhile."""
    cpu.start()
    requests, before = api_requests(kube), reconciles()
    start = time.monotonic()
    if go is None:
        create_all(kube, n)
    else:
        go()
    created = time.monotonic() - start
    wait_for(lambda: children.all_exist(n), TIMEOUT)
    seconds = time.monotonic() - start
    used = cpu.stop()
    requests = api_requests(kube) - requests - children.requests
    after = reconciles()
    children.verify(n)
    return {
        "seconds": seconds,
        "start": start,
        "created": created,
        "cpu": used,
        "requests": requests / n,
        "reconciles": after[0] - before[0],
        "reconcile_seconds": after[1] - before[1],
    }


def operator_run(
    n: int, idle: float, resync: float, converge_resync: float | None, workdir: Path
) -> dict[str, Any]:
    with fresh_cluster(workdir, f"operator-{n}") as (dev, kube):
        port = free_port()
        first: dict[str, float] = {"metricsPort": port}
        if converge_resync is not None:
            first["resyncSeconds"] = converge_resync
        config = write_config(workdir / f"config-{n}-converge.yaml", **first)
        children = Children(kube, load_config(config))
        operator_workers = kopf_workers(Context(cluster=kube, config=load_config(config)))
        operator = start_operator(dev, config, port)
        result = converge(
            kube,
            children,
            meter(dev, operator.pid),
            n,
            reconciles=lambda: (reconciled(port), reconcile_seconds(port)),
        )
        result["workers"] = operator_workers

        # Play Seldon: every deployment becomes Available, as Seldon reports once pods are ready.
        def available(s: dict[str, Any]) -> None:
            name = s["metadata"]["name"]
            kube.patch_status(SELDON, "SeldonDeployment", NS, name, {"state": "Available"})

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(available, kube.list(SELDON, "SeldonDeployment", NS)))
        wait_for(lambda: ready_count(kube) == n, timeout=TIMEOUT, interval=0.5)
        time.sleep(3)
        rss = rss_mb(operator.pid)
        stop(operator)

        # Restart with the short resync period: writes until every object is reconciled again,
        # then an idle window of resync passes.
        config = write_config(
            workdir / f"config-{n}-idle.yaml", metricsPort=port, resyncSeconds=resync
        )
        before = api_writes(kube)
        operator = start_operator(dev, config, port)
        wait_for(lambda: reconciled(port) >= n, timeout=TIMEOUT, interval=0.5)
        time.sleep(2)
        result["restart_writes"] = api_writes(kube) - before
        before, reconciles = api_writes(kube), reconciled(port)
        time.sleep(idle)
        result["idle_writes"] = api_writes(kube) - before
        result["idle_reconciles"] = reconciled(port) - reconciles
        result["rss"] = max(rss, rss_mb(operator.pid))
        stop(operator)
        return result


def floor_run(n: int, workdir: Path) -> dict[str, Any]:
    with fresh_cluster(workdir, f"floor-{n}") as (dev, kube):
        config = write_config(workdir / f"config-{n}-floor.yaml", metricsPort=0)
        children = Children(kube, load_config(config))
        argv = ["--kubeconfig", str(dev.kubeconfig), "--config", str(config), "--count", str(n)]
        floor = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.operator.floor", *argv],
            cwd=repo_root(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(dev.state / "floor.log").open("ab"),
            text=True,
        )
        _started.append(floor)
        assert floor.stdin is not None and floor.stdout is not None
        json.loads(floor.stdout.readline())  # ready: imported and connected

        def go() -> None:
            floor.stdin.write("go\n")  # type: ignore[union-attr]
            floor.stdin.flush()  # type: ignore[union-attr]

        result = converge(kube, children, meter(dev, floor.pid), n, go)
        done = json.loads(floor.stdout.readline())
        floor.stdin.close()
        floor.wait(30)
        if done["error_count"]:
            raise RuntimeError(f"floor: {done['error_count']} reconciles failed: {done['errors']}")
        result["returned"] = done["finished"] - result["start"]
        result["created"] = done["created"] - result["start"]
        keep = ("workers", "per_object", "variants", "reconciles", "reconcile_seconds")
        return {**result, **{k: done[k] for k in keep}}


def start_operator(dev: DevCluster, config: Path, port: int) -> subprocess.Popen[bytes]:
    log = (dev.state / "operator.log").open("ab")
    operator = subprocess.Popen(
        [sys.executable, "-m", "slipway", "run", "--standalone", "--config", str(config)],
        env={
            "KUBECONFIG": str(dev.kubeconfig),
            "PATH": "/usr/bin:/bin",
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _started.append(operator)
    # Its metrics server starts in kopf's startup handler; the watches start right after.
    wait_for(lambda: serving(port), timeout=60, interval=0.2)
    time.sleep(1)
    return operator


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (e.g. from `timeout`) into SystemExit so every cluster is stopped."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    _stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,100,1000")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window (s)")
    parser.add_argument("--resync", type=float, default=10.0, help="resync period when idle (s)")
    parser.add_argument(
        "--converge-resync",
        type=float,
        help="resync period while converging (s; default: the operator's own default)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor runs")
    parser.add_argument("--workdir", help="keep clusters' state and logs here (default: temporary)")
    args = parser.parse_args()
    rows = []
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for n in (int(s) for s in args.sizes.split(",")):
            row: dict[str, Any] = {
                "n": n,
                "operator": operator_run(n, args.idle, args.resync, args.converge_resync, workdir),
            }
            if not args.no_floor:
                row["floor"] = floor_run(n, workdir)
            print(f"N={n}: {json.dumps(row)}", file=sys.stderr, flush=True)
            rows.append(row)
    print(report.tables(rows, args.idle, args.resync))


if __name__ == "__main__":
    main()
