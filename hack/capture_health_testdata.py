#!/usr/bin/env python3
"""Capture the Argo CD health checks' testdata: real objects from a real API server, per state.

    .venv/bin/python hack/capture_health_testdata.py [--out tests/testdata/health] [--keep]

Starts a throwaway local control plane (``slipway.devcluster``: etcd, kube-apiserver, the
garbage collector, with Slipway's and the pinned third-party CRDs), an empty Prometheus for
rollout analysis, and a local webhook that refuses every call; then runs the operator in this
process, creates objects and waits for each state the checks must recognise. Every file written
is an object as the API server returned it, ``metadata.managedFields`` removed, in
``<out>/<Kind>/<health>-<case>.yaml`` (``<health>``: what the check must answer).

What runs for real: the operator; Datasets ingest and TrainingJobs and TuningSweeps train with
the local providers (kfp.local pipelines, torchrun, Optuna; the environments hack/venv.sh
makes); rollouts query the real Prometheus and call the real webhook. What is played: the
controllers that cannot run here. Seldon, Kubeflow Trainer, the Training Operator and Katib are
played by patching their objects' status through the status subresource, as those controllers
do (the API server checks each patch against the CRD's schema; Katib's has none). Stale states
(``observedGeneration`` behind ``generation``) are spec changes made after the operator stopped.

Three operator runs, one namespace each: local providers with Seldon and analysis (Slipway's
kinds, SeldonDeployments), then ``training: trainjob`` + ``tuning: katib`` (TrainJobs, Katib
Experiments), then ``training: pytorchjob`` (PyTorchJobs). About five minutes on two cores.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from health_capture_cases import make_stale, pytorchjobs, slipway_kinds, trainjobs_and_experiments
from health_capture_support import API, ROOT, Capture, Refuser, config, dataset, phase, say

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.commands import crd_folders
from slipway.devcluster.prometheus import PrometheusServer
from slipway.k8s import connect
from slipway.runner import RunningOperator, start_in_thread

# ---- the run -------------------------------------------------------------------------------------


def operator_run(
    cap: Capture, kubeconfig: Path, conf: OperatorConfig, work: Callable[[], Any]
) -> Any:
    running: RunningOperator = start_in_thread(conf, str(kubeconfig))
    try:
        return work()
    finally:
        running.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "testdata" / "health")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="slipway-capture-"))
    staging = work / "testdata"
    dev = DevCluster(work / "cluster")
    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuser)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{webhook.server_address[1]}/approve"
    started = time.monotonic()
    try:
        dev.start(crds=crd_folders(ROOT))
        kube = connect(str(dev.kubeconfig), field_manager="slipway-capture")
        cap = Capture(kube, staging)
        store = work / "store"
        with PrometheusServer(workdir=work / "prometheus") as prometheus:
            ns = cap.namespace("health")
            conf = config(ns, store, prometheus={"url": prometheus.url})
            stale = operator_run(cap, dev.kubeconfig, conf, lambda: slipway_kinds(cap, ns, url))
            make_stale(cap, ns, stale)
        ns = cap.namespace("health-kubeflow")
        conf = config(ns, store, training="trainjob", tuning="katib")

        def kubeflow() -> None:
            cap.kube.apply(dataset("digits", ns))
            cap.until(API, "Dataset", ns, "digits", phase("Ready"), "Ready")
            trainjobs_and_experiments(cap, ns)

        operator_run(cap, dev.kubeconfig, conf, kubeflow)
        conf = config(ns, store, training="pytorchjob", tuning="katib")
        operator_run(cap, dev.kubeconfig, conf, lambda: pytorchjobs(cap, ns))
    finally:
        webhook.shutdown()
        dev.stop()
    for folder in args.out.glob("*/"):  # the kinds' folders; README.md stays
        shutil.rmtree(folder)
    shutil.copytree(staging, args.out, dirs_exist_ok=True)
    say(f"{len(cap.written)} objects in {args.out} ({time.monotonic() - started:.0f} s)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
