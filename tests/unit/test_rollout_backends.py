"""Rollout providers: PromQL rendering and result parsing, Istio routes for A/B and shadow, and a
rollout holding (not failing) while its metrics provider is unreachable."""

from __future__ import annotations

import datetime as dt
import re
import socket

import pytest

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.api.v1alpha1.rollout import AnalysisMetric
from slipway.backends import AnalysisUnavailable, QueryRejected, Target
from slipway.backends.istio import build_destination_rule, build_virtual_service
from slipway.backends.prometheus import (
    PrometheusAnalysis,
    builtin_query,
    query_of,
    sample_query,
    single_value,
)
from slipway.backends.serving import VersionState
from slipway.builders import analysis as plan
from slipway.builders.meta import Owner
from slipway.builders.rollout import Live, ModelVersion, Split
from slipway.config import OperatorConfig
from slipway.reconcilers.rollout import RolloutRun, progress

TARGET = Target(namespace="team", name="digits", model="digits", version="v2", stable="v1")
OWNER = Owner("slipway.dev/v1alpha1", "ModelDeployment", "digits", "team", "uid-1")
STABLE = ModelVersion("file:///m/1.onnx", "sha256:" + "1" * 64)
CANDIDATE = ModelVersion("file:///m/2.onnx", "sha256:" + "2" * 64)


def test_builtin_queries_select_the_candidate_by_namespace_model_and_version() -> None:
    selector = '{namespace="team",model="digits",version="v2"}'
    rate = builtin_query("request-success-rate", TARGET, "1m")
    assert rate == (
        f'100 * (sum(rate(slipway_model_requests_total{selector[:-1]},code!~"5.."}}[1m])) '
        f"or vector(0)) / sum(rate(slipway_model_requests_total{selector}[1m]))"
    )
    duration = builtin_query("request-duration", TARGET, "30s")
    assert duration == (
        "1000 * histogram_quantile(0.99, sum by (le) "
        f"(rate(slipway_model_request_duration_seconds_bucket{selector}[30s])))"
    )
    assert sample_query(TARGET, "1m") == (
        f"sum(increase(slipway_model_requests_total{selector}[1m]))"
    )


def test_custom_queries_are_templates() -> None:
    metric = AnalysisMetric.model_validate(
        {
            "name": "error-ratio",
            "thresholdRange": {"max": 1.1},
            "interval": "2m",
            "query": 'sum(rate(x{ns="{{ namespace }}",v="{{version}}"}[{{ interval }}])) / '
            'sum(rate(x{ns="{{ namespace }}",v="{{ stable }}",md="{{ name }}"}[{{ interval }}]))',
        }
    )
    assert query_of(metric, TARGET) == (
        'sum(rate(x{ns="team",v="v2"}[2m])) / sum(rate(x{ns="team",v="v1",md="digits"}[2m]))'
    )


def test_unknown_template_variables_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown template variables \['pod'\]"):
        AnalysisMetric.model_validate(
            {"name": "x", "thresholdRange": {"max": 1}, "query": "up{pod='{{ pod }}'}"}
        )


def test_single_values() -> None:
    assert single_value({"resultType": "vector", "result": []}, "m") is None
    one = {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "97.5"]}]}
    assert single_value(one, "m") == 97.5
    nan = {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "NaN"]}]}
    assert single_value(nan, "m") is None
    assert single_value({"resultType": "scalar", "result": [1.0, "3"]}, "m") == 3.0
    two = {"resultType": "vector", "result": [one["result"][0], one["result"][0]]}
    with pytest.raises(QueryRejected, match="returned 2 series; aggregate it"):
        single_value(two, "m")


def test_an_unreachable_prometheus_is_unavailable_not_no_data() -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = PrometheusAnalysis(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(
        AnalysisUnavailable, match=re.escape(f"Prometheus at http://127.0.0.1:{port}")
    ):
        backend.sample_size(TARGET, "1m")


def test_ab_test_and_shadow_routes() -> None:
    config = OperatorConfig()
    match = ({"headers": {"x-group": {"exact": "beta"}}},)
    ab = build_virtual_service(OWNER, Split(STABLE, 100, CANDIDATE, 0, match=match), config)
    first, rest = ab["spec"]["http"]
    assert first["name"] == "ab-test" and first["match"] == list(match)
    assert [(r["destination"]["subset"], r["weight"]) for r in first["route"]] == [
        (CANDIDATE.version, 100)
    ]
    assert [(r["destination"]["subset"], r["weight"]) for r in rest["route"]] == [
        (STABLE.version, 100),
        (CANDIDATE.version, 0),
    ]
    shadow = build_virtual_service(OWNER, Split(STABLE, 100, CANDIDATE, 0, mirror=25.0), config)
    (main,) = shadow["spec"]["http"]
    assert main["mirror"]["subset"] == CANDIDATE.version
    assert main["mirrorPercentage"] == {"value": 25.0}


def test_a_kept_previous_version_keeps_its_subset_without_a_route() -> None:
    config = OperatorConfig()
    split = Split(CANDIDATE, 100, None, 0, promoted=True, previous=STABLE)
    subsets = build_destination_rule(OWNER, split, config)["spec"]["subsets"]
    assert [s["name"] for s in subsets] == [CANDIDATE.version, STABLE.version]
    routes = build_virtual_service(OWNER, split, config)["spec"]["http"][0]["route"]
    assert [r["destination"]["subset"] for r in routes] == [CANDIDATE.version]


class Unreachable:
    """An analysis provider whose server is down (what PrometheusAnalysis raises then)."""

    measures = True

    def sample_size(self, target: Target, window: str) -> float | None:
        raise AnalysisUnavailable("Prometheus at http://prometheus:9090: connection refused")

    def measure(self, metric: AnalysisMetric, target: Target) -> float | None:
        raise AnalysisUnavailable("Prometheus at http://prometheus:9090: connection refused")


def test_an_unreachable_provider_holds_the_rollout_without_counting_a_failure() -> None:
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": CANDIDATE.uri, "digest": CANDIDATE.digest},
            "rollout": {
                "strategy": "Canary",
                "analysis": {
                    "interval": "10s",
                    "threshold": 1,
                    "stepWeights": [20, 50],
                    "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
                },
            },
        }
    )
    assert spec.rollout.analysis is not None
    live = Live(STABLE, CANDIDATE)
    started = plan.begin(
        plan.start("Canary", "v2", CANDIDATE.digest, "v1", spec.rollout.analysis, now),
        spec.rollout.analysis,
        now,
    )
    later = now + dt.timedelta(seconds=10.5)
    run = RolloutRun(OWNER, spec, live, VersionState(ready=True), Unreachable(), later, 1)
    step = progress(run, started)
    assert step.check == "Unavailable" and step.lateness == pytest.approx(0.5)
    assert (step.state.phase, step.state.failed_checks, step.state.weight) == (
        "Progressing",
        0,
        20,
    )
    assert step.state.reason == "AnalysisUnavailable"
    assert (step.split.stable_weight, step.split.candidate_weight) == (80, 20)
    assert step.due == later + dt.timedelta(seconds=10)
    assert [n.reason for n in step.notes] == ["AnalysisUnavailable"]
