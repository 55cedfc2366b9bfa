"""The rollout timeline in the README: ``kubectl get md -w`` over two real Canary rollouts.

On a fresh local control plane: the operator in-process (``prometheus`` analysis), a real
Prometheus, real model servers for every SeldonDeployment (Seldon played, as in the tests) and a
load generator that routes by the VirtualService (Istio played). A good candidate is promoted
through every step, then a model that fails inference is rolled back. It prints what
``kubectl get md -w`` printed meanwhile, then the ModelDeployment's Events.

    python -m benchmarks.rollout.timeline [--interval 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.binaries import tool_path
from slipway.devcluster.commands import crd_folders
from slipway.devcluster.model_servers import model_server_python
from slipway.devcluster.paths import repo_root
from slipway.devcluster.prometheus import PrometheusServer
from slipway.k8s import connect
from slipway.runner import start_in_thread
from tests.integration.rollout_env import (
    Model,
    SeldonPlayer,
    Targets,
    make_models,
    wait_for,
)
from tests.integration.rollout_traffic import IstioPlayer

API = "slipway.dev/v1alpha1"
NS = "demo"


def manifest(model: Model, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": "digits", "namespace": NS},
        "spec": {
            "model": model.spec(),
            "rollout": {
                "strategy": "Canary",
                "analysis": {
                    "interval": f"{interval}s",
                    "threshold": 2,
                    "stepWeights": [10, 25, 50],
                    "minSampleSize": 5,
                    "metrics": [
                        {
                            "name": "request-success-rate",
                            "thresholdRange": {"min": 99},
                            "interval": f"{2 * interval}s",
                        },
                        {
                            "name": "request-duration",
                            "thresholdRange": {"max": 500},
                            "interval": f"{2 * interval}s",
                        },
                    ],
                },
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=int, default=5, help="analysis interval (s)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="slipway-timeline-"))
    python = model_server_python()
    models = make_models(python, workdir / "models")
    dev = DevCluster(workdir / "cluster")
    dev.start(crds=crd_folders(repo_root()))
    kubectl = str(tool_path("kubectl"))
    try:
        with PrometheusServer(scrape_interval=0.5, workdir=workdir / "prometheus") as prom:
            kube = connect(str(dev.kubeconfig), field_manager="timeline")
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            config = OperatorConfig.model_validate(
                {
                    "namespace": NS,
                    "metricsPort": 0,
                    "healthPort": 0,
                    "analysis": "prometheus",
                    "prometheus": {"url": prom.url},
                }
            )
            operator = start_in_thread(config, str(dev.kubeconfig))
            watch_log = (workdir / "watch.txt").open("w")
            env = {"KUBECONFIG": str(dev.kubeconfig), "PATH": "/usr/bin:/bin"}
            watch = subprocess.Popen(
                [kubectl, "get", "md", "-n", NS, "-w"], stdout=watch_log, env=env
            )
            with SeldonPlayer(kube, NS, python, Targets(prom), workdir) as seldon:

                def rollout() -> dict[str, Any]:
                    md = kube.get(API, "ModelDeployment", NS, "digits") or {}
                    return dict((md.get("status") or {}).get("rollout") or {})

                kube.apply(manifest(models["good-1"], args.interval))
                wait_for(
                    lambda: (
                        (kube.get(API, "ModelDeployment", NS, "digits") or {})
                        .get("status", {})
                        .get("phase")
                        == "Ready"
                    ),
                    60,
                    "Ready",
                )
                with IstioPlayer(kube, NS, "digits", seldon):
                    kube.apply(manifest(models["good-2"], args.interval))
                    wait_for(lambda: rollout().get("phase") == "Succeeded", 120, "promotion")
                    time.sleep(2)
                    kube.apply(manifest(models["bad"], args.interval))
                    wait_for(lambda: rollout().get("phase") == "Failed", 120, "rollback")
                    time.sleep(2)
            watch.terminate()
            watch.wait(10)
            watch_log.close()
            operator.stop()
            print((workdir / "watch.txt").read_text())
            events = subprocess.run(
                [kubectl, "get", "events", "-n", NS, "--sort-by=.metadata.creationTimestamp"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            print(events)
    finally:
        dev.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
