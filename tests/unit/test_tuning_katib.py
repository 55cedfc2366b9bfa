"""The Katib provider: the Experiment it renders passes the rules of Katib v0.19.0's admission
webhook (restated here from pkg/webhook/v1beta1/experiment/validator, which does not run on the
local control plane), its metrics collection reads what the trainer writes, and ``observe`` reads
Katib's status as Katib writes it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from slipway.api.v1alpha1.tuningsweep import TuningSweepSpec
from slipway.backends.katib import JSON_PAIRS, METRICS_FILE, KatibTuning
from slipway.backends.tuning import (
    FAILED,
    GOAL_REACHED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    SweepRequest,
)
from slipway.builders.meta import Owner
from slipway.reconcilers.sweepplan import experiment_name, request
from slipway.reconcilers.trainingplan import DatasetVersion

OWNER = Owner("slipway.dev/v1alpha1", "TuningSweep", "digits", "team-a", "0f1e2d3c-aaaa-bbbb")
DATA = DatasetVersion("digits", "v1", "sha256:" + "ab" * 32, "pvc://slipway-datasets/digits/v1")
SPEC: dict[str, Any] = {
    "trialTemplate": {"spec": {"dataset": {"name": "digits", "version": "v1"}}},
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
            "feasibleSpace": {"min": 0.0001, "max": 0.1, "distribution": "logUniform"},
        },
        {"name": "hidden", "parameterType": "int", "feasibleSpace": {"min": 32, "max": 128}},
        {
            "name": "optimizer",
            "parameterType": "categorical",
            "feasibleSpace": {"list": ["adam", "sgd"]},
        },
    ],
    "parallelTrialCount": 2,
    "maxTrialCount": 8,
    "maxFailedTrialCount": 2,
}
# Katib's StdOut collector default filter (pkg/metricscollector/v1beta1/common/const.go).
KATIB_DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def sweep_request(**changes: Any) -> tuple[SweepRequest, TuningSweepSpec]:
    spec = TuningSweepSpec.model_validate({**SPEC, **changes})
    name = experiment_name(OWNER, spec, DATA, "katib")
    return request(OWNER, name, spec, DATA, None, in_pods=True), spec


def render(**changes: Any) -> dict[str, Any]:
    req, _ = sweep_request(**changes)
    manifest = KatibTuning().render(OWNER, req)
    assert manifest is not None
    return manifest


def katib_webhook_problems(experiment: dict[str, Any]) -> list[str]:
    """The checks of Katib's ValidateExperiment that concern what Slipway renders."""
    found = []
    name = experiment["metadata"]["name"]
    if not re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", name) or len(name) > 40:
        found.append("metadata.name")
    spec = experiment["spec"]
    objective = spec["objective"]
    if objective["type"] not in ("minimize", "maximize") or not objective["objectiveMetricName"]:
        found.append("objective")
    if objective["objectiveMetricName"] in objective.get("additionalMetricNames", []):
        found.append("objective.additionalMetricNames")
    if spec["parallelTrialCount"] > spec["maxTrialCount"]:
        found.append("parallelTrialCount")
    if spec.get("maxFailedTrialCount", 0) > spec["maxTrialCount"]:
        found.append("maxFailedTrialCount")
    for p in spec["parameters"]:
        space = p["feasibleSpace"]
        if p["parameterType"] in ("int", "double") and ("list" in space or not space.get("min")):
            found.append(f"parameters.{p['name']}")
        if p["parameterType"] in ("categorical", "discrete") and set(space) - {"list"}:
            found.append(f"parameters.{p['name']}")
    template = spec["trialTemplate"]
    if not template.get("primaryContainerName"):
        found.append("trialTemplate.primaryContainerName")
    if not template.get("successCondition") or not template.get("failureCondition"):
        found.append("trialTemplate.conditions")
    text = json.dumps(template["trialSpec"])
    names = {p["name"] for p in spec["parameters"]}
    for tp in template["trialParameters"]:
        ref = tp["reference"]
        if not re.match(r"^\$\{trialSpec\.(.+?)\}$", ref) and ref not in names:
            found.append(f"trialParameters.{tp['name']}.reference")
        placeholder = "${trialParameters." + tp["name"] + "}"
        if placeholder not in text:
            found.append(f"trialParameters.{tp['name']} unused")
        text = text.replace(placeholder, "test-value")
    if re.findall(r"\$\{trialParameters\..+?\}", text):
        found.append("trialSpec has placeholders without trial parameters")
    collector = spec["metricsCollectorSpec"]
    if collector["collector"]["kind"] == "File":
        path = collector["source"]["fileSystemPath"]
        if path["kind"] != "File" or not path["path"].startswith("/"):
            found.append("metricsCollectorSpec.source.fileSystemPath.path")
        if path["format"] not in ("TEXT", "JSON"):
            found.append("metricsCollectorSpec.source.fileSystemPath.format")
        for regex in collector["source"].get("filter", {}).get("metricsFormat", []):
            if not re.match(r".*\(.*\).*\(.*\).*", regex):
                found.append("metricsCollectorSpec.source.filter")
    return found


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"metricsCollector": "StdOut"},
        {"algorithm": {"algorithmName": "grid"}, "parameters": SPEC["parameters"][1:]},
        {
            "trialTemplate": {
                "spec": {
                    "dataset": {"name": "digits", "version": "v1"},
                    "workers": 2,
                }
            }
        },
    ],
    ids=["file", "stdout", "grid", "trainjob"],
)
def test_rendered_experiments_pass_katibs_webhook_rules(changes: dict[str, Any]) -> None:
    assert katib_webhook_problems(render(**changes)) == []


def test_trials_substitute_every_parameter_and_export_under_their_own_name() -> None:
    experiment = render()
    template = experiment["spec"]["trialTemplate"]
    assert template["primaryContainerName"] == "trainer"
    job = template["trialSpec"]
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    name = experiment["metadata"]["name"]
    assert "--learning-rate=${trialParameters.learningRate}" in args
    assert "--hparam=hidden=${trialParameters.hidden}" in args
    assert "--optimizer=${trialParameters.optimizer}" in args
    assert not any(a.startswith("--optimizer=adam") for a in args)  # searched, not fixed
    assert f"--output-uri=/mnt/pvc/slipway-models/team-a/{name}/${{trialParameters.trialName}}" in (
        args
    )
    assert f"--metrics-file={METRICS_FILE}" in args
    references = {t["name"]: t["reference"] for t in template["trialParameters"]}
    assert references["trialName"] == "${trialSpec.Name}"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["capabilities"] == {"drop": ["ALL"]}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"slipway-datasets", "slipway-models"}


def test_objective_counts_and_early_stopping_are_katibs() -> None:
    spec = render()["spec"]
    assert spec["objective"]["metricStrategies"] == [
        {"name": "val_accuracy", "value": "latest"},
        {"name": "val_loss", "value": "latest"},
    ]
    assert (spec["parallelTrialCount"], spec["maxTrialCount"], spec["maxFailedTrialCount"]) == (
        2,
        8,
        2,
    )
    assert spec["resumePolicy"] == "Never"
    assert spec["earlyStopping"] == {"algorithmName": "medianstop"}
    bounds = {p["name"]: p["feasibleSpace"] for p in spec["parameters"]}
    assert bounds["hidden"] == {"min": "32", "max": "128"}
    assert bounds["learningRate"]["distribution"] == "logUniform"


def test_trainjob_trials_for_several_workers() -> None:
    template = render(
        trialTemplate={"spec": {"dataset": {"name": "digits", "version": "v1"}, "workers": 3}}
    )["spec"]["trialTemplate"]
    assert template["trialSpec"]["kind"] == "TrainJob"
    assert "metadata" not in template["trialSpec"]  # Katib names each TrainJob after its trial
    assert template["primaryContainerName"] == "node"
    assert template["trialSpec"]["spec"]["trainer"]["numNodes"] == 3
    assert template["primaryPodLabels"]["jobset.sigs.k8s.io/replicatedjob-name"] == "node"


def test_the_file_collector_reads_the_trainers_json_lines() -> None:
    """Katib's JSON format takes only string values and the trainer writes numbers, so the file is
    read as TEXT with a filter for JSON pairs; Katib's TEXT parser takes the first two groups."""
    spec = render()["spec"]["metricsCollectorSpec"]
    assert spec["source"]["fileSystemPath"]["format"] == "TEXT"
    line = json.dumps(
        {"accuracy": 0.91, "epoch": 2, "loss": 0.3, "val_accuracy": 0.925, "val_loss": 1e-05},
        sort_keys=True,
    )
    pairs = {m[0]: m[1] for m in re.findall(JSON_PAIRS, line)}
    assert pairs["val_accuracy"] == "0.925" and pairs["val_loss"] == "1e-05"


def test_the_stdout_collector_reads_the_trainers_katib_line() -> None:
    assert render(metricsCollector="StdOut")["spec"]["metricsCollectorSpec"] == {
        "collector": {"kind": "StdOut"}
    }
    line = "epoch=3 loss=0.210000 accuracy=0.950000 val_loss=0.230000 val_accuracy=0.940000"
    pairs = {m[0]: m[1] for m in re.findall(KATIB_DEFAULT_FILTER, line)}
    assert pairs["val_accuracy"] == "0.940000"


def test_names_change_with_the_spec_but_not_with_the_counts() -> None:
    base, _ = sweep_request()
    counts, _ = sweep_request(parallelTrialCount=3, maxTrialCount=20, maxFailedTrialCount=5)
    other, _ = sweep_request(algorithm={"algorithmName": "random"})
    assert base.name == counts.name != other.name
    assert len(base.name) <= 31 and base.name.startswith("digits-")


def experiment(conditions: list[tuple[str, str, str]], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "digits-abc"},
        "status": {
            "conditions": [{"type": t, "status": s, "reason": r} for t, s, r in conditions],
            **status,
        },
    }


def trial(name: str, condition: str, accuracy: str | None, lr: str) -> dict[str, Any]:
    metrics = [{"name": "val_accuracy", "latest": accuracy or "unavailable"}]
    return {
        "metadata": {"name": name},
        "spec": {"parameterAssignments": [{"name": "learningRate", "value": lr}]},
        "status": {
            "conditions": [{"type": condition, "status": "True"}],
            "observation": {"metrics": metrics},
        },
    }


def test_observe_reads_katibs_conditions_counts_and_trials() -> None:
    req, _ = sweep_request()
    katib = KatibTuning()
    assert katib.observe(req, None, []).phase == PENDING
    running = katib.observe(
        req,
        experiment(
            [("Created", "True", "ExperimentCreated"), ("Running", "True", "ExperimentRunning")],
            trials=3,
            trialsRunning=2,
            trialsSucceeded=1,
        ),
        [
            trial("digits-abc-1", "Succeeded", "0.93", "0.01"),
            trial("digits-abc-2", "Running", None, "0.1"),
        ],
    )
    assert (running.phase, running.reason) == (RUNNING, "ExperimentRunning")
    assert (running.counts.total, running.counts.running, running.counts.succeeded) == (3, 2, 1)
    by_name = {t.name: t for t in running.trials}
    assert by_name["digits-abc-1"].objective == 0.93
    assert by_name["digits-abc-2"].objective is None and by_name["digits-abc-2"].state == RUNNING
    done = katib.observe(
        req,
        experiment(
            [("Running", "False", "ExperimentRunning"), ("Succeeded", "True", GOAL_REACHED)],
            currentOptimalTrial={
                "bestTrialName": "digits-abc-7",
                "parameterAssignments": [{"name": "learningRate", "value": "0.02"}],
                "observation": {"metrics": [{"name": "val_accuracy", "latest": "0.995"}]},
            },
        ),
        [],
    )
    assert (done.phase, done.reason, done.optimal) == (SUCCEEDED, GOAL_REACHED, "digits-abc-7")
    assert (
        done.trials[0].parameters == {"learningRate": "0.02"} and done.trials[0].objective == 0.995
    )
    failed = katib.observe(req, experiment([("Failed", "True", "ExperimentFailed")]), [])
    assert failed.phase == FAILED and failed.terminal
