"""A TuningSweep with the ``local`` provider, really running, on the real API server.

Nothing is played: the Dataset is ingested by the real pipeline (kfp.local), the sweep runner is
the real detached process driving a real Optuna study, and every trial is the real trainer (a
small MLP, 3 epochs on digits) writing model.onnx and metadata.json. The ModelDeployment is
checked up to the model it serves (Seldon's controller does not run here).

Halfway through, the operator is stopped and the sweep runner killed (its trials run on, as
detached runs do); a new operator resumes the stored study with a new runner: the sweep ends with
exactly its trial budget, no trial run twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.backends.localpipelines import PIPELINES_VENV
from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.k8s import Cluster
from slipway.reconcilers.runs import FINALIZER
from slipway.runner import RunningOperator, start_in_thread

from .conftest import POOLS, ROOT, local_providers
from .test_dataset import API, condition, dataset, get, local_path, phase_is, run_logs, wait_for
from .test_tuningsweep_katib import SHOWN, eventually

SWEEP_TIMEOUT = 600.0  # 5 trials of a few seconds each, on a loaded 2-core machine


def sweep(name: str, namespace: str) -> dict[str, Any]:
    """examples/03-tuningsweep.yaml with 5 trials and a seed whose draws include poor ones."""
    return {
        "apiVersion": API,
        "kind": "TuningSweep",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "trialTemplate": {
                "spec": {
                    "dataset": {"name": "digits", "version": "v1"},
                    "trainer": {"model": "mlp", "epochs": 3, "batchSize": 32, "seed": 7},
                }
            },
            "objective": {
                "type": "maximize",
                "objectiveMetricName": "val_accuracy",
                "additionalMetricNames": ["val_loss"],
            },
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "3"}],
            },
            "earlyStopping": {
                "algorithmName": "medianstop",
                "algorithmSettings": [
                    {"name": "min_trials_required", "value": "1"},
                    {"name": "start_step", "value": "1"},
                ],
            },
            "parameters": [
                {
                    "name": "learningRate",
                    "parameterType": "double",
                    "feasibleSpace": {"min": 0.0001, "max": 0.03, "distribution": "logUniform"},
                },
                {
                    "name": "hidden",
                    "parameterType": "int",
                    "feasibleSpace": {"min": 32, "max": 128, "step": 32},
                },
            ],
            "parallelTrialCount": 2,
            "maxTrialCount": 5,
            "maxFailedTrialCount": 2,
        },
    }


@pytest.fixture(scope="module")
def config(local_store: Path) -> OperatorConfig:
    """Local providers for everything (namespaces sl-*); trials in the pipelines environment,
    which holds the trainer's requirements (hack/venv.sh creates it on first use)."""
    out = subprocess.run(
        [str(ROOT / "hack" / "venv.sh"), PIPELINES_VENV.name, *PIPELINES_VENV.requirements],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    python = str(Path(out.stdout.strip()) / "bin" / "python")
    return OperatorConfig.model_validate(
        {
            **POOLS,
            **local_providers(local_store),
            "namespace": "sl-*",
            "tuning": "local",
            "trainerPython": python,
        }
    )


@pytest.fixture
def first_operator(dev_cluster: DevCluster, config: OperatorConfig) -> Iterator[RunningOperator]:
    running = start_in_thread(config, str(dev_cluster.kubeconfig))
    yield running
    running.stop()


@pytest.fixture
def digits(kube: Cluster, first_operator: RunningOperator, local_store: Path) -> Iterator[str]:
    ns = f"sl-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(dataset("digits", ns))
    ready = wait_for(kube, local_store, "Dataset", ns, "digits", phase_is("Ready", "Failed"), "v1")
    assert ready["status"]["latestVersion"] == "v1", ready["status"]
    SHOWN.append((kube, ns))
    yield ns
    SHOWN.remove((kube, ns))
    kube.delete("v1", "Namespace", None, ns)


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_real_sweep_survives_an_operator_restart_and_feeds_a_model_deployment(
    kube: Cluster,
    dev_cluster: DevCluster,
    config: OperatorConfig,
    first_operator: RunningOperator,
    digits: str,
    local_store: Path,
) -> None:
    ns, store = digits, local_store
    started = time.monotonic()
    kube.apply(sweep("digits", ns))
    kube.apply(
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": "digits", "namespace": ns},
            "spec": {"model": {"tuningSweepRef": {"name": "digits"}}},
        }
    )
    halfway = eventually(
        lambda: (
            (s := get(kube, "TuningSweep", ns, "digits").get("status") or {}).get("trialsSucceeded")
            and s.get("trialsRunning")
            and s
        ),
        what="a trial done and another running",
        timeout=SWEEP_TIMEOUT,
    )
    experiment = halfway["experiment"]["name"]
    assert halfway["phase"] == "Running" and halfway["experiment"]["provider"] == "local"
    assert FINALIZER in get(kube, "TuningSweep", ns, "digits")["metadata"]["finalizers"]

    # The operator stops and the sweep runner dies; the trials in flight run on.
    first_operator.stop()
    runner = store / "runs" / f"{experiment}-runner-1"
    os.killpg(json.loads((runner / "pid").read_text())["pid"], signal.SIGKILL)
    second = start_in_thread(config, str(dev_cluster.kubeconfig))
    try:
        done = wait_for(
            kube,
            store,
            "TuningSweep",
            ns,
            "digits",
            phase_is("Succeeded", "Failed"),
            "the sweep to end",
            timeout=SWEEP_TIMEOUT,
        )
        status = done["status"]
        assert status["phase"] == "Succeeded", f"{status}\n{run_logs(store, experiment)}"
        elapsed = time.monotonic() - started
        assert condition(done, "Succeeded")["reason"] == "ExperimentMaxTrialsReached"
        assert (store / "runs" / f"{experiment}-runner-2").is_dir()  # the study resumed
        trials = sorted(p.name for p in (store / "runs").glob(f"{experiment}-[0-9][0-9][0-9]"))
        assert len(trials) == status["trials"] == 5  # the budget, and no trial run twice
        drawn = {
            json.loads((store / "runs" / t / "spec.json").read_text())["info"]["values"][
                "learningRate"
            ]
            for t in trials
        }
        assert len(drawn) == 5  # the resumed study draws new values
        assert status["trialsEarlyStopped"] >= 1
        assert status["trialsSucceeded"] + status["trialsEarlyStopped"] == 5
        best = status["bestTrial"]
        assert best["experiment"] == experiment and best["metrics"]["val_accuracy"] >= 0.9
        assert best["objective"] == best["metrics"]["val_accuracy"]
        assert status["bestObjective"] == round(best["objective"], 4)
        onnx = local_path(store, best["modelUri"])
        assert best["modelDigest"] == sha256_of(onnx)
        metadata = json.loads((onnx.parent / "metadata.json").read_text())
        assert metadata["training"]["learningRate"] == float(best["parameters"]["learningRate"])
        digest = get(kube, "Dataset", ns, "digits")["status"]["latestDigest"]
        assert status["lineage"]["datasetDigest"] == digest == metadata["dataset"]["digest"]
        assert FINALIZER not in (done["metadata"].get("finalizers") or [])
        deployed = eventually(
            lambda: (get(kube, "ModelDeployment", ns, "digits").get("status") or {}).get("stable"),
            what="the ModelDeployment serving the best trial",
        )
        assert deployed["modelDigest"] == best["modelDigest"]
        print(
            f"\nsweep {experiment}: {status['trials']} trials "
            f"({status['trialsEarlyStopped']} stopped early), best {best['name']} "
            f"{best['parameters']} val_accuracy {best['objective']:.4f}, {elapsed:.0f} s"
        )
    finally:
        second.stop()
