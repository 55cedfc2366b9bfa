"""Operator benchmark: convergence time, steady-state writes and memory, on the local control plane.

For each size N (default 1, 100, 1000) it starts a fresh control plane (etcd + kube-apiserver +
garbage collector on loopback) and the operator as its own process (`slipway run --standalone`),
creates N ModelDeployments and measures:

- **converge**: seconds from the first create until every ModelDeployment has all four children
  (SeldonDeployment, Service, DestinationRule, VirtualService);
- **steady-state writes**: after Seldon is played (each SeldonDeployment patched Available, as
  Seldon's controller would) and every ModelDeployment is Ready, the API writes (POST, PUT, PATCH,
  APPLY, DELETE to the kinds the operator touches, from kube-apiserver's own request counters)
  during an idle window in which the periodic resync reconciles every object a few times, and
  across an operator restart until the new process has reconciled every object again (both
  counted by the operator's own slipway_reconcile_total);
- **RSS**: the operator process's resident memory with N objects.

    python -m benchmarks.operator.run [--sizes 1,100,1000] [--idle 30] [--resync 10]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from slipway.devcluster import DevCluster
from slipway.devcluster.cluster import free_port
from slipway.devcluster.commands import crd_folders
from slipway.devcluster.paths import repo_root
from slipway.k8s import Cluster, connect

API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
NS = "bench"
# Writes to the kinds the operator touches (the API server's own lease and endpoint renewals are
# not the operator's and are left out).
WRITE = re.compile(
    r'apiserver_request_total\{[^}]*resource="(modeldeployments|seldondeployments|services|'
    r'virtualservices|destinationrules|events)"[^}]*'
    r'verb="(POST|PUT|PATCH|APPLY|DELETE)"[^}]*\} (\S+)'
)


def api_writes(cluster: Cluster) -> float:
    """Total write requests the API server has served (its own counter)."""
    creds = cluster.credentials()
    request = urllib.request.Request(
        creds["server"] + "/metrics", headers={"Authorization": f"Bearer {creds['token']}"}
    )
    context = ssl.create_default_context(cafile=creds["ca_path"])
    context.check_hostname = False
    with urllib.request.urlopen(request, context=context) as response:
        text = response.read().decode()
    return sum(float(m.group(3)) for m in WRITE.finditer(text))


def reconciled(port: int) -> float:
    """ModelDeployment reconciliations the operator has finished, from its own metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('slipway_reconcile_total{kind="ModelDeployment"')
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def manifest(i: int) -> dict:  # type: ignore[type-arg]
    digest = f"{i:064x}"
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": f"model-{i:04d}", "namespace": NS},
        "spec": {
            "model": {"uri": f"s3://models/m{i}/model.onnx", "digest": f"sha256:{digest}"},
            "placement": {"nodePool": "gpu", "gpus": 1},
        },
    }


def wait_for(check, timeout: float, interval: float = 0.5) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"not converged after {timeout:.0f} s")


def ready_count(kube: Cluster) -> int:
    return sum(
        1
        for md in kube.list(API, "ModelDeployment", NS)
        for c in (md.get("status") or {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    )


def run_size(n: int, idle: float, resync: float, workdir: Path) -> dict[str, float]:
    root = repo_root()
    dev = DevCluster(workdir / f"cluster-{n}")
    dev.start(crds=crd_folders(root))
    try:
        kube = connect(str(dev.kubeconfig), field_manager="bench")
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        config = workdir / f"config-{n}.yaml"
        pools = yaml.safe_load((root / "config" / "dev.yaml").read_text())
        metrics_port = free_port()
        settings = {**pools, "metricsPort": metrics_port, "resyncSeconds": resync}
        config.write_text(yaml.safe_dump(settings))
        operator = start_operator(dev, config)
        time.sleep(2)
        apiserver = dev.pids()["kube-apiserver"]
        cpu_before = cpu_seconds(operator.pid), cpu_seconds(apiserver)
        start = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: kube.create(manifest(i)), range(n)))
        created = time.monotonic() - start

        def converged() -> bool:
            kinds = [
                (SELDON, "SeldonDeployment"),
                ("networking.istio.io/v1", "VirtualService"),
                ("networking.istio.io/v1", "DestinationRule"),
                ("v1", "Service"),
            ]
            return all(
                len(kube.list(a, k, NS, "app.kubernetes.io/part-of=slipway")) >= n for a, k in kinds
            )

        wait_for(converged, timeout=600)
        converge = time.monotonic() - start
        operator_cpu = cpu_seconds(operator.pid) - cpu_before[0]
        apiserver_cpu = cpu_seconds(apiserver) - cpu_before[1]

        # Play Seldon: every deployment becomes Available, as Seldon reports once pods are ready.
        sdeps = kube.list(SELDON, "SeldonDeployment", NS)
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda s: kube.patch_status(
                        SELDON,
                        "SeldonDeployment",
                        NS,
                        s["metadata"]["name"],
                        {"state": "Available"},
                    ),
                    sdeps,
                )
            )
        wait_for(lambda: ready_count(kube) == n, timeout=600)
        time.sleep(3)

        before, reconciles = api_writes(kube), reconciled(metrics_port)
        time.sleep(idle)
        idle_writes = api_writes(kube) - before
        idle_reconciles = reconciled(metrics_port) - reconciles
        rss = rss_mb(operator.pid)

        operator.terminate()
        operator.wait(30)
        before = api_writes(kube)
        restarted = start_operator(dev, config)
        # Every object is reconciled again on start (kopf's resume handlers): wait for all of them.
        wait_for(lambda: reconciled(metrics_port) >= n, timeout=600)
        time.sleep(2)
        restart_writes = api_writes(kube) - before
        restarted.terminate()
        restarted.wait(30)
        return {
            "n": n,
            "create": created,
            "converge": converge,
            "idle_writes": idle_writes,
            "idle_reconciles": idle_reconciles,
            "restart_writes": restart_writes,
            "rss": rss,
            "operator_cpu": operator_cpu,
            "apiserver_cpu": apiserver_cpu,
        }
    finally:
        dev.stop()


def start_operator(dev: DevCluster, config: Path) -> subprocess.Popen[bytes]:
    log = (dev.state / "operator.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "slipway", "run", "--standalone", "--config", str(config)],
        env={"KUBECONFIG": str(dev.kubeconfig), "PATH": "/usr/bin:/bin"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


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
    parser.add_argument("--resync", type=float, default=10.0, help="resync period (s)")
    parser.add_argument("--workdir", help="keep clusters' state and logs here (default: temporary)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            row = run_size(n, args.idle, args.resync, Path(tmp))
            print(f"N={n}: {row}", file=sys.stderr, flush=True)
            rows.append(row)
    print(
        "| ModelDeployments | all children created (s) | operator CPU (s) | kube-apiserver CPU (s) "
        f"| reconciles / writes while idle ({args.idle:.0f} s, resync every {args.resync:.0f} s) "
        "| writes on operator restart "
        "| operator RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']:.0f} | {r['converge']:.1f} | {r['operator_cpu']:.1f} "
            f"| {r['apiserver_cpu']:.1f} | {r['idle_reconciles']:.0f} / {r['idle_writes']:.0f} "
            f"| {r['restart_writes']:.0f} | {r['rss']:.0f} |"
        )


if __name__ == "__main__":
    main()
