"""TuningSweeps with the ``katib`` provider on the real API server, Katib's CRDs installed at the
pinned v0.19.0.

Katib's controller does not run here: the tests play it. They create the Trials Katib would create
(owned by the Experiment, labelled with it), write their status and the Experiment's status as
Katib's experiment controller does (conditions with Katib's reasons, the trial counters,
``currentOptimalTrial``), and play each trial's pod by writing what the trainer writes at the
trial's output location (``model.onnx`` and ``metadata.json``). Katib's v0.19.0 CRDs carry no
structural schema (``x-kubernetes-preserve-unknown-fields``), so besides the API server accepting
the Experiment, the live object is checked against the rules of Katib's admission webhook
(restated in tests/unit/test_tuning_katib.py).

The Dataset's ingestion is played as well (its status is written with one version, after the
operator, configured with no pipelines provider, has reported it): the Experiment only needs the
version's URI and digest. Real ingestion and real trials run in test_tuningsweep_local.py.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.k8s import ApiError, Cluster
from slipway.runner import RunningOperator, start_in_thread

from ..unit.test_tuning_katib import katib_webhook_problems
from .conftest import POOLS
from .conftest import eventually as _eventually
from .test_dataset import API, condition, dataset, get, phase_is, wait_for

KATIB = "kubeflow.org/v1beta1"
SHOWN: list[tuple[Cluster, str]] = []  # (client, namespace) whose sweeps a failure message shows


def eventually(check: Any, what: str, timeout: float = 90.0) -> Any:
    """The conftest helper, with the TuningSweeps' status in the failure message."""
    try:
        return _eventually(check, timeout=timeout, interval=0.3, what=what)
    except AssertionError as exc:
        shown = [
            {s["metadata"]["name"]: s.get("status")}
            for kube, ns in SHOWN
            for s in kube.list(API, "TuningSweep", ns)
        ]
        raise AssertionError(f"{exc}\n{json.dumps(shown, indent=1)[:6000]}") from None


def sweep(name: str, namespace: str, models: Path, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "trialTemplate": {
            "spec": {
                "dataset": {"name": "digits", "version": "v1"},
                "trainer": {"model": "mlp", "epochs": 3},
                "outputUri": f"file://{models}",
            }
        },
        "objective": {
            "type": "maximize",
            "goal": 0.99,
            "objectiveMetricName": "val_accuracy",
            "additionalMetricNames": ["val_loss"],
        },
        "algorithm": {"algorithmName": "tpe"},
        "earlyStopping": {"algorithmName": "medianstop"},
        "parameters": [
            {
                "name": "learningRate",
                "parameterType": "double",
                "feasibleSpace": {"min": 0.0001, "max": 0.05, "distribution": "logUniform"},
            },
            {"name": "hidden", "parameterType": "int", "feasibleSpace": {"min": 32, "max": 128}},
        ],
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "maxFailedTrialCount": 2,
        **changes,
    }
    return {
        "apiVersion": API,
        "kind": "TuningSweep",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def katib_operator(dev_cluster: DevCluster, local_store: Path) -> Iterator[RunningOperator]:
    """An operator of its own (namespaces sk-*): the katib tuning provider, no pipelines."""
    config = {**POOLS, "namespace": "sk-*", "tuning": "katib", "pipelines": "none"}
    config["localStore"] = str(local_store)
    running = start_in_thread(OperatorConfig.model_validate(config), str(dev_cluster.kubeconfig))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def digits(kube: Cluster, katib_operator: RunningOperator, local_store: Path) -> Iterator[str]:
    """A namespace whose Dataset ``digits`` has version v1 (its ingestion played)."""
    ns = f"sk-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(dataset("digits", ns))
    wait_for(kube, local_store, "Dataset", ns, "digits", phase_is("Failed"), "reported", 60)
    digest = "sha256:" + hashlib.sha256(b"digits v1").hexdigest()
    version = {
        "version": "v1",
        "digest": digest,
        "rows": 1797,
        "uri": "pvc://slipway-datasets/digits/v1",
        "created": "2026-01-01T00:00:00Z",
    }
    kube.patch_status(
        API,
        "Dataset",
        ns,
        "digits",
        {"latestVersion": "v1", "latestDigest": digest, "versions": [version]},
    )
    SHOWN.append((kube, ns))
    yield ns
    SHOWN.remove((kube, ns))
    kube.delete("v1", "Namespace", None, ns)


def experiments(kube: Cluster, ns: str) -> list[dict[str, Any]]:
    live = kube.list(KATIB, "Experiment", ns)
    return [e for e in live if not e["metadata"].get("deletionTimestamp")]


def play_trial(
    kube: Cluster,
    models: Path,
    experiment: dict[str, Any],
    name: str,
    state: str,
    values: dict[str, str],
    accuracy: float | None,
) -> str | None:
    """Katib creates a Trial and its metrics collector reports; for a Succeeded trial, its pod
    wrote model.onnx and metadata.json. Returns the model's digest, if one was written."""
    meta = experiment["metadata"]
    kube.apply(
        {
            "apiVersion": KATIB,
            "kind": "Trial",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {"katib.kubeflow.org/experiment": meta["name"]},
                "ownerReferences": [
                    {
                        "apiVersion": KATIB,
                        "kind": "Experiment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "objective": experiment["spec"]["objective"],
                "parameterAssignments": [{"name": k, "value": v} for k, v in values.items()],
            },
        }
    )
    metrics = [{"name": "val_accuracy", "latest": str(accuracy) if accuracy else "unavailable"}]
    kube.patch_status(
        KATIB,
        "Trial",
        meta["namespace"],
        name,
        {
            "conditions": [{"type": state, "status": "True", "reason": f"Trial{state}"}],
            "observation": {"metrics": metrics},
        },
    )
    if state != "Succeeded":
        return None
    folder = models / meta["namespace"] / meta["name"] / name
    folder.mkdir(parents=True)
    model = f"model of {name}".encode()
    (folder / "model.onnx").write_bytes(model)
    digest = get(kube, "Dataset", meta["namespace"], "digits")["status"]["latestDigest"]
    metadata = {
        "model": {"file": "model.onnx", "sha256": hashlib.sha256(model).hexdigest()},
        "dataset": {"digest": digest},
        "metrics": {"validation": {"accuracy": accuracy, "loss": 0.1}},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return "sha256:" + hashlib.sha256(model).hexdigest()


def play_experiment(kube: Cluster, experiment: dict[str, Any], **status: Any) -> None:
    meta = experiment["metadata"]
    kube.patch_status(KATIB, "Experiment", meta["namespace"], meta["name"], status)


def conditions(*items: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"type": t, "status": s, "reason": r} for t, s, r in items]


def sweep_status(kube: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(get(kube, "TuningSweep", ns, name).get("status") or {})


def test_experiment_best_model_and_a_new_experiment_on_a_spec_change(
    kube: Cluster, digits: str, tmp_path: Path
) -> None:
    ns, models = digits, tmp_path / "models"
    kube.apply(sweep("digits", ns, models))
    [exp] = eventually(lambda: experiments(kube, ns), what="the Katib Experiment")
    name = exp["metadata"]["name"]
    sweep_obj = get(kube, "TuningSweep", ns, "digits")
    assert exp["metadata"]["ownerReferences"][0]["uid"] == sweep_obj["metadata"]["uid"]
    assert katib_webhook_problems(exp) == []
    assert exp["spec"]["maxTrialCount"] == 4
    trial_spec = exp["spec"]["trialTemplate"]["trialSpec"]
    args = trial_spec["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--output-uri={models}/{ns}/{name}/${{trialParameters.trialName}}" in args
    eventually(
        lambda: sweep_status(kube, ns, "digits").get("experiment", {}).get("name") == name,
        what="the experiment in status",
    )

    # Katib runs trials: two succeeded, one stopped early, one running.
    lr = {"learningRate": "0.01", "hidden": "64"}
    play_trial(kube, models, exp, f"{name}-aaaa1111", "Succeeded", lr, 0.91)
    second = {"learningRate": "0.02", "hidden": "96"}
    play_trial(kube, models, exp, f"{name}-bbbb2222", "Succeeded", second, 0.95)
    stopped = {"learningRate": "0.0001", "hidden": "32"}
    play_trial(kube, models, exp, f"{name}-cccc3333", "EarlyStopped", stopped, 0.4)
    play_trial(kube, models, exp, f"{name}-dddd4444", "Running", lr, None)
    play_experiment(
        kube,
        exp,
        conditions=conditions(
            ("Created", "True", "ExperimentCreated"), ("Running", "True", "ExperimentRunning")
        ),
        trials=4,
        trialsRunning=1,
        trialsSucceeded=2,
        trialsEarlyStopped=1,
    )
    running = eventually(
        lambda: (s := sweep_status(kube, ns, "digits")).get("trialsEarlyStopped") == 1 and s,
        what="the trial counts",
    )
    assert running["phase"] == "Running" and running["trials"] == 4
    assert running["bestObjective"] == 0.95
    assert [t["name"] for t in running["bestTrials"]] == [f"{name}-bbbb2222", f"{name}-aaaa1111"]
    assert running["bestTrials"][0]["model"]["uri"].startswith(f"file://{models}/")
    assert "bestTrial" not in running  # nothing is served before the experiment succeeds

    kube.apply(
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": "digits", "namespace": ns},
            "spec": {"model": {"tuningSweepRef": {"name": "digits"}}},
        }
    )
    best = {"learningRate": "0.015", "hidden": "128"}
    digest = play_trial(kube, models, exp, f"{name}-dddd4444", "Succeeded", best, 0.97)
    play_experiment(
        kube,
        exp,
        conditions=conditions(
            ("Running", "False", "ExperimentRunning"),
            ("Succeeded", "True", "ExperimentMaxTrialsReached"),
        ),
        trialsRunning=0,
        trialsSucceeded=3,
        currentOptimalTrial={
            "bestTrialName": f"{name}-dddd4444",
            "parameterAssignments": [{"name": k, "value": v} for k, v in best.items()],
            "observation": {"metrics": [{"name": "val_accuracy", "latest": "0.97"}]},
        },
    )
    done = eventually(
        lambda: (s := sweep_status(kube, ns, "digits")).get("phase") == "Succeeded" and s,
        what="the sweep to succeed",
    )
    assert done["bestTrial"]["name"] == f"{name}-dddd4444"
    assert done["bestTrial"]["parameters"] == best
    assert done["bestTrial"]["modelDigest"] == digest
    assert (
        done["bestTrial"]["modelUri"] == f"file://{models}/{ns}/{name}/{name}-dddd4444/model.onnx"
    )
    succeeded = condition(get(kube, "TuningSweep", ns, "digits"), "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("True", "ExperimentMaxTrialsReached")
    dataset_digest = get(kube, "Dataset", ns, "digits")["status"]["latestDigest"]
    assert done["lineage"]["datasetDigest"] == dataset_digest
    assert done["lineage"]["modelDigest"] == digest
    stable = eventually(
        lambda: (get(kube, "ModelDeployment", ns, "digits").get("status") or {}).get("stable"),
        what="the ModelDeployment serving the best trial",
    )
    assert stable["modelDigest"] == digest

    # Only the counts change: the same Experiment takes them.
    kube.apply(sweep("digits", ns, models, maxTrialCount=6))
    eventually(
        lambda: [e["spec"]["maxTrialCount"] for e in experiments(kube, ns)] == [6],
        what="the new count on the live Experiment",
    )
    assert experiments(kube, ns)[0]["metadata"]["name"] == name

    # Any other change: a new Experiment; the old one goes, its best model stays served.
    kube.apply(sweep("digits", ns, models, maxTrialCount=6, algorithm={"algorithmName": "random"}))
    [new] = eventually(
        lambda: (
            [e for e in experiments(kube, ns) if e["metadata"]["name"] != name]
            if len(experiments(kube, ns)) == 1
            else None
        ),
        what="the new Experiment replacing the old one",
    )
    new_name = new["metadata"]["name"]
    status = eventually(
        lambda: (
            (s := sweep_status(kube, ns, "digits")).get("experiment", {}).get("name") == new_name
            and s
        ),
        what="the new experiment in status",
    )
    assert status["bestTrial"]["name"] == f"{name}-dddd4444" and "bestTrials" not in status
    better = {"learningRate": "0.012", "hidden": "128"}
    new_digest = play_trial(kube, models, new, f"{new_name}-eeee5555", "Succeeded", better, 0.995)
    play_experiment(
        kube,
        new,
        conditions=conditions(("Succeeded", "True", "ExperimentGoalReached")),
        trials=1,
        trialsSucceeded=1,
        currentOptimalTrial={"bestTrialName": f"{new_name}-eeee5555"},
    )
    eventually(
        lambda: (
            sweep_status(kube, ns, "digits").get("bestTrial", {}).get("modelDigest") == new_digest
        ),
        what="the new experiment's best model in status",
    )
    md = eventually(
        lambda: (
            (s := get(kube, "ModelDeployment", ns, "digits").get("status") or {}).get("candidate")
            and s
        ),
        what="the new best model as the ModelDeployment's candidate",
    )
    assert md["candidate"]["modelDigest"] == new_digest
    assert md["stable"]["modelDigest"] == digest  # not replaced in place


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        (
            {
                "trialTemplate": {
                    "spec": {"dataset": {"name": "nope", "version": "v1"}, "trainer": {}}
                }
            },
            "DatasetNotFound",
            "spec.trialTemplate.spec.dataset: Dataset 'nope' does not exist",
        ),
        (
            {"objective": {"type": "maximize", "objectiveMetricName": "f1"}},
            "MetricNotReported",
            "spec.objective.objectiveMetricName: the trainer does not report 'f1'",
        ),
    ],
    ids=["missing-dataset", "unreported-metric"],
)
def test_what_admission_cannot_see_is_degraded_naming_the_field(
    kube: Cluster, digits: str, tmp_path: Path, changes: dict[str, Any], reason: str, field: str
) -> None:
    name = f"bad-{reason.lower()}"
    kube.apply(sweep(name, digits, tmp_path, **changes))
    degraded = eventually(
        lambda: (
            (c := condition(get(kube, "TuningSweep", digits, name), "Degraded"))
            and c["status"] == "True"
            and c
        ),
        what="Degraded",
    )
    assert degraded["reason"] == reason and field in degraded["message"], degraded
    assert not [e for e in experiments(kube, digits) if e["metadata"]["name"].startswith(name)]


def space(type_: str, **feasible: Any) -> dict[str, Any]:
    return {"name": "learningRate", "parameterType": type_, "feasibleSpace": feasible}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"parameters": [space("double", min=0.1, max=0.01)]},
            "int and double parameters need feasibleSpace.min <= feasibleSpace.max",
        ),
        (
            {"parameters": [space("discrete", list=[])]},
            "categorical and discrete parameters need a non-empty feasibleSpace.list",
        ),
        (
            {"parameters": [space("double", min=0.01, max=0.02, step=0.5)]},
            "feasibleSpace.step must not be larger than feasibleSpace.max - feasibleSpace.min",
        ),
        (
            {"algorithm": {"algorithmName": "grid"}},
            "grid search needs feasibleSpace.step on every double parameter",
        ),
        ({"algorithm": {"algorithmName": "hyperband"}}, "bayesianoptimization"),
        (
            {"parameters": [space("discrete", list=["0.1", "fast"])]},
            "discrete parameters need numbers in feasibleSpace.list",
        ),
    ],
    ids=[
        "min-above-max",
        "empty-list",
        "step-above-range",
        "grid-without-step",
        "hyperband",
        "nan",
    ],
)
def test_search_spaces_that_cannot_produce_a_value_are_refused_at_admission(
    kube: Cluster, digits: str, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as info:
        kube.apply(sweep("refused", digits, tmp_path, **changes))
    assert info.value.status == 422 and message in str(info.value), str(info.value)
