"""The chart's alerts under ``promtool test rules``: each one firing, and each one not firing.

The PrometheusRule is rendered by helm with the chart's default thresholds, its ``spec`` written
as a Prometheus rule file, checked with ``promtool check rules`` and tested with ``promtool test
rules`` (the promtool of ``slipway.devcluster.prometheus``: built once from Go modules into the
cache). The series are what the operator and the model servers export (names and labels of
``slipway.metrics``, ``slipway.statusmetrics`` and the model server's metrics); each alert has a
case that fires, with its labels and annotations as a user reads them, and cases that must not
(below the threshold, not yet for the alert's whole ``for`` window, another state).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.devcluster.binaries import ensure_helm
from slipway.devcluster.prometheus import ensure_prometheus

CHART = Path(__file__).resolve().parents[2] / "charts" / "slipway"
RULES = "rules.yaml"


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = subprocess.run(
        [
            str(ensure_helm()),
            *("template", "slipway", str(CHART), "--kube-version", "v1.34.4"),
            *("--set", "monitoring.prometheusRule.enabled=true"),
            *("--show-only", "templates/prometheusrule.yaml"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rule = yaml.safe_load(out)
    folder = tmp_path_factory.mktemp("rules")
    (folder / RULES).write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return folder


def alert_names(folder: Path) -> set[str]:
    groups = yaml.safe_load((folder / RULES).read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ensure_prometheus().promtool), *args], cwd=cwd, capture_output=True, text=True
    )


def test_rules_are_valid(rules: Path) -> None:
    result = promtool("check", "rules", RULES, cwd=rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


MD = {"kind": "ModelDeployment", "namespace": "ml"}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def case(alert: str, at: str, fired: list[tuple[dict[str, str], dict[str, str]]]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": lab, "exp_annotations": ann} for lab, ann in fired],
    }


def operator_group() -> dict[str, Any]:
    condition, phase = "slipway_object_condition", "slipway_object_phase"
    tj = {"kind": "TrainingJob", "namespace": "ml"}
    return {
        "interval": "1m",
        "input_series": [
            # errors in ModelDeployment reconciles all along; Dataset's counter never moves
            series("slipway_reconcile_errors_total", {"kind": "ModelDeployment"}, "0+6x30"),
            series("slipway_reconcile_errors_total", {"kind": "Dataset"}, "5x30"),
            # digits never Ready; steady is Ready
            series(
                condition, {**MD, "name": "digits", "type": "Ready"} | {"reason": "Waiting"}, "0x30"
            ),
            series(condition, {**MD, "name": "steady", "type": "Ready"} | {"reason": "Ok"}, "1x30"),
            # digits rolled back candidate v2
            series(
                "slipway_modeldeployment_rollout_phase",
                {"namespace": "ml", "name": "digits", "strategy": "Canary", "candidate": "v2"}
                | {"phase": "Failed"},
                "1x30",
            ),
            # gated failed its quality gate
            series(
                condition,
                {**tj, "name": "gated", "type": "Degraded", "reason": "QualityGateFailed"},
                "1x30",
            ),
            series(phase, {**tj, "name": "gated", "phase": "Failed"}, "1x30"),
        ],
        "alert_rule_test": [
            case("SlipwayReconcileErrors", "8m", []),  # not yet for 10m
            case(
                "SlipwayReconcileErrors",
                "20m",
                [
                    (
                        {"kind": "ModelDeployment", "severity": "warning"},
                        {
                            "summary": "Slipway fails to reconcile ModelDeployment objects",
                            "description": "100m reconciles of ModelDeployment per second end in "
                            "an error; the operator's log names the object and the error.",
                        },
                    )
                ],
            ),
            case("SlipwayModelDeploymentNotReady", "10m", []),  # not yet for 15m
            case(
                "SlipwayModelDeploymentNotReady",
                "20m",
                [
                    (
                        {"namespace": "ml", "name": "digits", "severity": "warning"},
                        {
                            "summary": "ModelDeployment ml/digits is not Ready",
                            "description": "No version of ml/digits has served for 15m; "
                            "kubectl describe md -n ml digits says why.",
                        },
                    )
                ],
            ),
            case(
                "SlipwayRolloutRolledBack",
                "1m",
                [
                    (
                        {"namespace": "ml", "name": "digits", "candidate": "v2"}
                        | {"severity": "warning"},
                        {
                            "summary": "ModelDeployment ml/digits rolled back candidate v2",
                            "description": "The rollout of v2 failed its analysis or a webhook; "
                            "status.rollout has the failed metric. The stable version keeps "
                            "serving.",
                        },
                    )
                ],
            ),
            case(
                "SlipwayTrainingJobFailed",
                "1m",
                [
                    (
                        {"namespace": "ml", "name": "gated", "reason": "QualityGateFailed"}
                        | {"severity": "warning"},
                        {
                            "summary": "TrainingJob ml/gated failed (QualityGateFailed)",
                            "description": "The job's Degraded condition holds the message: "
                            "kubectl describe tj -n ml gated.",
                        },
                    )
                ],
            ),
        ],
    }


def quiet_group() -> dict[str, Any]:
    """Objects in states that raise nothing: a promoted rollout, a TrainingJob that succeeded, one
    that is Degraded while it waits for its Dataset (Pending, not Failed)."""
    condition, phase = "slipway_object_condition", "slipway_object_phase"
    tj = {"kind": "TrainingJob", "namespace": "ml"}
    rollout = {"namespace": "ml", "name": "other", "strategy": "Canary", "candidate": "v9"}
    return {
        "interval": "1m",
        "input_series": [
            series(
                "slipway_modeldeployment_rollout_phase", rollout | {"phase": "Succeeded"}, "1x30"
            ),
            series(
                condition, {**tj, "name": "mlp", "type": "Degraded", "reason": "AsExpected"}, "0x30"
            ),
            series(phase, {**tj, "name": "mlp", "phase": "Succeeded"}, "1x30"),
            series(
                condition,
                {**tj, "name": "early", "type": "Degraded", "reason": "DatasetNotFound"},
                "1x30",
            ),
            series(phase, {**tj, "name": "early", "phase": "Pending"}, "1x30"),
        ],
        "alert_rule_test": [
            case("SlipwayRolloutRolledBack", "20m", []),
            case("SlipwayTrainingJobFailed", "20m", []),
        ],
    }


def model_group() -> dict[str, Any]:
    requests, buckets = (
        "slipway_model_requests_total",
        "slipway_model_request_duration_seconds_bucket",
    )
    v1 = {"namespace": "ml", "model": "digits", "version": "v1"}
    v2 = {"namespace": "ml", "model": "digits", "version": "v2"}
    return {
        "interval": "1m",
        "input_series": [
            # v2: 10 of 70 answers per minute are 5xx (14%); v1: 1 of 101 (1%)
            series(requests, {**v2, "code": "200"}, "0+60x30"),
            series(requests, {**v2, "code": "500"}, "0+10x30"),
            series(requests, {**v1, "code": "200"}, "0+100x30"),
            series(requests, {**v1, "code": "503"}, "0+1x30"),
            # v2: 90 of 100 requests per minute take 0.1-1 s (p99 ~ 0.99 s); v1: all under 0.1 s
            series(buckets, {**v2, "le": "0.1"}, "0+10x30"),
            series(buckets, {**v2, "le": "1"}, "0+100x30"),
            series(buckets, {**v2, "le": "+Inf"}, "0+100x30"),
            series(buckets, {**v1, "le": "0.1"}, "0+100x30"),
            series(buckets, {**v1, "le": "1"}, "0+100x30"),
            series(buckets, {**v1, "le": "+Inf"}, "0+100x30"),
        ],
        "alert_rule_test": [
            case("SlipwayModelErrorRate", "4m", []),  # above the threshold, not yet for 5m
            case(
                "SlipwayModelErrorRate",
                "15m",
                [
                    (
                        {**v2, "severity": "critical"},
                        {
                            "summary": "Model ml/digits version v2 answers 14.29% of requests "
                            "with 5xx",
                            "description": "Above the threshold for the whole alert window; a "
                            "rollout's analysis rolls a candidate back on its own, a stable "
                            "version needs a look.",
                        },
                    )
                ],
            ),
            case("SlipwayModelLatencyHigh", "4m", []),
            case(
                "SlipwayModelLatencyHigh",
                "15m",
                [
                    (
                        {**v2, "severity": "warning"},
                        {
                            "summary": "Model ml/digits version v2: p99 latency 990ms",
                            "description": "The 99th percentile of inference latency is above "
                            "the threshold; check the replicas' CPU or GPU and the batch sizes.",
                        },
                    )
                ],
            ),
        ],
    }


def test_each_alert_fires_and_does_not_fire(rules: Path) -> None:
    groups = [operator_group(), quiet_group(), model_group()]
    tested = {t["alertname"] for g in groups for t in g["alert_rule_test"]}
    assert tested == alert_names(rules), "every alert has its cases"
    for alert in tested:  # each one both fires and stays silent somewhere
        outcomes = {
            bool(t["exp_alerts"])
            for g in groups
            for t in g["alert_rule_test"]
            if t["alertname"] == alert
        }
        assert outcomes == {True, False}, alert
    spec = {"rule_files": [RULES], "evaluation_interval": "1m", "tests": groups}
    (rules / "test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = promtool("test", "rules", "test.yaml", cwd=rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
