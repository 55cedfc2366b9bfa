"""Rollout benchmark: many ModelDeployments in canary analysis at once, on a real Prometheus.

On a fresh local control plane it runs the operator as its own process (``slipway run
--standalone``, the ``prometheus`` analysis provider), a real Prometheus and two real model-server
processes, then creates N ModelDeployments, plays Seldon (every SeldonDeployment patched
Available), and gives all N a new model at once: N canary rollouts start together, each checked
every ``--interval`` seconds (two builtin metrics and the sample size: three PromQL queries per
check) through twenty steps, longer than the measurement.

Prometheus scrapes the candidate server once per ModelDeployment, through file discovery, with
that ModelDeployment's ``namespace``/``model``/``version`` as target labels (which take the place
of the server's own, as ``honor_labels: false`` does): N distinct candidate series from one real
process, fed by a load generator sending it real inference requests.

What it measures over ``--duration`` seconds, once every rollout is under analysis:

- **lateness** of every check: from its due time (the ``nextCheckTime`` the previous check wrote
  in status) to the moment it ran (its ``lastCheckTime``), both from the objects' status;
- **CPU** of the operator, kube-apiserver, etcd, Prometheus, the model servers and the machine.

    python -m benchmarks.rollout.run [--count 100] [--interval 10] [--duration 120]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from benchmarks.operator.probes import CpuMeter, operator_metric
from slipway.builders import analysis as plan
from slipway.devcluster import DevCluster
from slipway.devcluster.cluster import free_port
from slipway.devcluster.commands import crd_folders
from slipway.devcluster.model_servers import model_server_python as server_python
from slipway.devcluster.paths import repo_root
from slipway.devcluster.prometheus import PrometheusServer
from slipway.k8s import Cluster, connect
from tests.integration.rollout_env import IMAGE, Model, make_models
from tests.integration.rollout_traffic import infer_body

API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
NS = "bench-rollout"
STEPS = list(range(1, 21))  # twenty canary steps: no rollout ends during the measurement


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def manifest(i: int, model: Model, interval: float) -> dict[str, Any]:
    window = f"{int(2 * interval)}s"
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": f"md-{i:03d}", "namespace": NS},
        "spec": {
            "model": model.spec(),
            "rollout": {
                "strategy": "Canary",
                "analysis": {
                    "interval": f"{int(interval)}s",
                    "stepWeights": STEPS,
                    "maxWeight": STEPS[-1],
                    "minSampleSize": 1,
                    "metrics": [
                        {
                            "name": "request-success-rate",
                            "thresholdRange": {"min": 99},
                            "interval": window,
                        },
                        {
                            "name": "request-duration",
                            "thresholdRange": {"max": 500},
                            "interval": window,
                        },
                    ],
                },
            },
        },
    }


@contextlib.contextmanager
def model_server(python: Path, model: Model, version: str, log: Path) -> Iterator[int]:
    port = free_port()
    env = {
        "PYTHONPATH": str(IMAGE / "src"),
        "SLIPWAY_MODEL_URI": model.uri,
        "SLIPWAY_MODEL_SHA256": model.digest,
        "SLIPWAY_MODEL_NAME": "bench",
        "SLIPWAY_MODEL_VERSION": version,
        "SLIPWAY_HOST": "127.0.0.1",
        "SLIPWAY_PORT": str(port),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "slipway_model_server"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v2/health/ready")
            return conn.getresponse().status == 200
        return False

    try:
        wait_for(ready, 60, f"model server {version}", 0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def load(port: int, rate: float, stop: threading.Event) -> None:
    """Real inference requests to the candidate server, ``rate`` per second."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body, period = infer_body(), 1.0 / rate
    while not stop.wait(period):
        try:
            conn.request(
                "POST", "/v2/models/bench/infer", body, {"Content-Type": "application/json"}
            )
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def play_seldon(kube: Cluster, names: set[str]) -> None:
    def available(name: str) -> None:
        kube.patch_status(SELDON, "SeldonDeployment", NS, name, {"state": "Available"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(available, sorted(names)))


def sdeps(kube: Cluster, suffix: str) -> set[str]:
    return {
        s["metadata"]["name"]
        for s in kube.list(SELDON, "SeldonDeployment", NS)
        if s["metadata"]["name"].endswith(suffix)
    }


def rollouts(kube: Cluster) -> dict[str, dict[str, Any]]:
    return {
        md["metadata"]["name"]: (md.get("status") or {}).get("rollout") or {}
        for md in kube.list(API, "ModelDeployment", NS)
    }


def lateness(kube: Cluster, duration: float, poll: float) -> list[float]:
    """Seconds each check ran after its due time, for the checks run within ``duration``."""
    due: dict[str, str] = {}
    last: dict[str, str] = {}
    late: list[float] = []
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        for name, r in rollouts(kube).items():
            ran, upcoming = r.get("lastCheckTime"), r.get("nextCheckTime")
            if name in due and ran and ran != last.get(name):
                expected, actual = plan.parse_time(due[name]), plan.parse_time(ran)
                assert expected is not None and actual is not None
                late.append((actual - expected).total_seconds())
            if ran:
                last[name] = ran
            if upcoming:
                due[name] = upcoming
        time.sleep(poll)
    return late


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(count: int, interval: float, duration: float, scrape: float, rate: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="slipway-bench-rollout-"))
    python = server_python()
    models = make_models(python, workdir / "models")
    stable, candidate = models["good-1"], models["good-2"]
    dev = DevCluster(workdir / "cluster")
    dev.start(crds=crd_folders(repo_root()))
    prometheus = PrometheusServer(scrape_interval=scrape, workdir=workdir / "prometheus")
    stop = threading.Event()
    operator: subprocess.Popen[bytes] | None = None
    try:
        prometheus.start()
        kube = connect(str(dev.kubeconfig), field_manager="bench")
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        with model_server(python, candidate, candidate.version, workdir / "server.log") as port:
            prometheus.set_targets(
                (
                    [f"127.0.0.1:{port}"],
                    {"namespace": NS, "model": f"md-{i:03d}", "version": candidate.version},
                )
                for i in range(count)
            )
            loader = threading.Thread(target=load, args=(port, rate, stop), daemon=True)
            loader.start()
            metrics_port = free_port()
            config = workdir / "operator.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "namespace": NS,
                        "metricsPort": metrics_port,
                        "healthPort": 0,
                        "analysis": "prometheus",
                        "prometheus": {"url": prometheus.url},
                    }
                )
            )
            with (workdir / "operator.log").open("ab") as log:
                operator = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "slipway",
                        "run",
                        "--standalone",
                        "--config",
                        str(config),
                    ],
                    env={**os.environ, "KUBECONFIG": str(dev.kubeconfig)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            say(f"creating {count} ModelDeployments on {stable.version}")
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: kube.apply(manifest(i, stable, interval)), range(count)))
            wait_for(lambda: len(sdeps(kube, stable.version)) == count, 300, "stable deployments")
            play_seldon(kube, sdeps(kube, stable.version))
            say(f"giving all {count} the candidate {candidate.version} at once")
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: kube.apply(manifest(i, candidate, interval)), range(count)))
            wait_for(
                lambda: len(sdeps(kube, candidate.version)) == count, 300, "candidate deployments"
            )
            play_seldon(kube, sdeps(kube, candidate.version))
            wait_for(
                lambda: (
                    sum(r.get("phase") == "Progressing" for r in rollouts(kube).values()) == count
                ),
                300,
                "every rollout under analysis",
            )
            names = {"kube-apiserver": "apiserver", "etcd": "etcd"}
            pids = {short: dev.pids()[name] for name, short in names.items()}
            assert prometheus._proc is not None
            meter = CpuMeter({"operator": operator.pid, "prometheus": prometheus._proc.pid, **pids})
            checks_before = operator_metric(metrics_port, "slipway_rollout_checks_total")
            say(f"measuring {duration:.0f} s of checks every {interval:.0f} s")
            meter.start()
            late = lateness(kube, duration, poll=interval / 4)
            cpu = meter.stop()
            checks = operator_metric(metrics_port, "slipway_rollout_checks_total") - checks_before
            states = rollouts(kube).values()
            return {
                "count": count,
                "interval": interval,
                "duration": duration,
                "scrape": scrape,
                "checks": len(late),
                "checks_counted": checks,
                "failed": sum(r.get("failedChecks", 0) for r in states),
                "inconclusive": sum(r.get("inconclusiveChecks", 0) for r in states),
                "late_p50": percentile(late, 0.50),
                "late_p99": percentile(late, 0.99),
                "late_max": max(late),
                "cpu": cpu,
            }
    finally:
        stop.set()
        if operator is not None and operator.poll() is None:
            operator.terminate()
            operator.wait(30)
        prometheus.stop()
        dev.stop()


def table(row: dict[str, Any]) -> str:
    interval, cpu, seconds = row["interval"], row["cpu"], row["duration"]

    def pct(value: float) -> str:
        return f"{value:.2f} s ({100 * value / interval:.1f}%)"

    return "\n".join(
        [
            "| ModelDeployments in analysis | interval | checks measured | lateness p50 "
            "| lateness p99 | lateness max | operator CPU | kube-apiserver CPU | Prometheus CPU "
            "| machine CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {row['count']} | {interval:.0f} s | {row['checks']} | {pct(row['late_p50'])} "
            f"| {pct(row['late_p99'])} | {pct(row['late_max'])} "
            f"| {cpu['operator'] / seconds:.2f} cores | {cpu['apiserver'] / seconds:.2f} cores "
            f"| {cpu['prometheus'] / seconds:.2f} cores | {cpu['machine'] / seconds:.2f} cores |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="ModelDeployments (default 100)")
    parser.add_argument("--interval", type=float, default=10, help="analysis interval (s)")
    parser.add_argument("--duration", type=float, default=120, help="measured seconds")
    parser.add_argument("--scrape", type=float, default=2, help="Prometheus scrape interval (s)")
    parser.add_argument("--rate", type=float, default=20, help="requests/s to the candidate")
    args = parser.parse_args(argv)
    row = run(args.count, args.interval, args.duration, args.scrape, args.rate)
    print(json.dumps(row, indent=1), file=sys.stderr)
    print(table(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
