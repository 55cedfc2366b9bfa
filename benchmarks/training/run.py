"""Operator overhead per Dataset ingestion and per TrainingJob, next to the run itself.

It starts a fresh local control plane and the operator in-process with the local providers (the
setup of ``make dev``), ingests ``builtin://digits``, then applies TrainingJobs one after the other
(each with its own seed, so none reuses another's model) and measures, for each object:

- **apply -> run start**: from the client's apply until the run's folder holds its ``spec.json``
  (written by the provider right before the run's process starts);
- **run**: from that moment until the run's ``state.json`` (written by the run's supervisor when
  the pipeline ends): the pipeline itself, kfp.local's process start-ups included;
- **run end -> status**: from ``state.json`` until the client, polling every 50 ms, sees the
  object Ready (the Dataset with its version, the TrainingJob Succeeded with its model). This is
  the requeue delay (a tenth of the run's age, 2 to 30 s) plus the reconcile and status write.

    python -m benchmarks.training.run [--jobs 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.commands import crd_folders
from slipway.devcluster.paths import repo_root
from slipway.k8s import Cluster, connect
from slipway.runner import start_in_thread

API = "slipway.dev/v1alpha1"
NS = "bench-training"
POLL_S = 0.05


def wait(kube: Cluster, kind: str, name: str, done: Any, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = kube.get(API, kind, NS, name)
        if obj is not None and done(obj.get("status") or {}):
            return obj
        time.sleep(POLL_S)
    raise TimeoutError(f"{kind} {name} not done in {timeout:.0f} s")


def measure(kube: Cluster, store: Path, manifest: dict[str, Any], done: Any) -> dict[str, float]:
    """Apply ``manifest`` and time its run (see the module docstring)."""
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    applied = time.time()
    kube.apply(manifest)
    obj = wait(kube, kind, name, done)
    seen = time.time()
    run = (obj["status"].get("ingestion") or obj["status"].get("run") or {})["name"]
    folder = store / "runs" / run
    started = (folder / "spec.json").stat().st_mtime
    ended = (folder / "state.json").stat().st_mtime
    return {"to_start": started - applied, "run": ended - started, "to_status": seen - ended}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slipway-bench-training-") as tmp:
        dev = DevCluster(Path(tmp) / "cluster")
        dev.start(crds=crd_folders(repo_root()))
        store = Path(tmp) / "store"
        config = OperatorConfig.model_validate(
            {
                "namespace": NS,
                "pipelines": "local",
                "training": "local",
                "localStore": str(store),
                "metricsPort": 0,
                "healthPort": 0,
            }
        )
        operator = start_in_thread(config, str(dev.kubeconfig))
        try:
            kube = connect(str(dev.kubeconfig), field_manager="bench")
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            rows = [("Dataset digits", _ingest(kube, store))]
            for i in range(args.jobs):
                rows.append((f"TrainingJob mlp-{i}", _train(kube, store, i, args.epochs)))
        finally:
            operator.stop()
            dev.stop()
    print("| object | apply -> run start (s) | run (s) | run end -> status (s) |")
    print("|---|---:|---:|---:|")
    for what, r in rows:
        print(f"| {what} | {r['to_start']:.2f} | {r['run']:.1f} | {r['to_status']:.2f} |")
    jobs = [r for what, r in rows if what.startswith("TrainingJob")]
    if jobs:
        medians = {k: statistics.median(r[k] for r in jobs) for k in jobs[0]}
        print(
            f"| TrainingJob, median | {medians['to_start']:.2f} | {medians['run']:.1f} "
            f"| {medians['to_status']:.2f} |"
        )


def _ingest(kube: Cluster, store: Path) -> dict[str, float]:
    manifest = {
        "apiVersion": API,
        "kind": "Dataset",
        "metadata": {"name": "digits", "namespace": NS},
        "spec": {"source": "builtin://digits"},
    }
    return measure(kube, store, manifest, lambda s: s.get("latestVersion") == "v1")


def _train(kube: Cluster, store: Path, seed: int, epochs: int) -> dict[str, float]:
    manifest = {
        "apiVersion": API,
        "kind": "TrainingJob",
        "metadata": {"name": f"mlp-{seed}", "namespace": NS},
        "spec": {
            "dataset": {"name": "digits", "version": "v1"},
            "trainer": {"model": "mlp", "epochs": epochs, "seed": seed},
        },
    }
    result = measure(kube, store, manifest, lambda s: s.get("phase") in ("Succeeded", "Failed"))
    phase = (kube.get(API, "TrainingJob", NS, f"mlp-{seed}") or {})["status"]["phase"]
    if phase != "Succeeded":
        raise RuntimeError(f"TrainingJob mlp-{seed} ended {phase}")
    return result


if __name__ == "__main__":
    main()
