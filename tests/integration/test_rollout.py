"""Progressive delivery end to end: Canary, ABTest and Shadow rollouts judged on a real Prometheus.

Real parts: the API server, the operator (its own instance, watching the ``r-*`` namespaces with
the ``prometheus`` analysis provider pointed at this module's Prometheus), Prometheus itself
(built from its Go module, scraping through file discovery), and one real model-server process
per model version, serving real ONNX models. Played parts, as the tests say where they happen:
Seldon's controller (``SeldonPlayer`` starts the server a SeldonDeployment describes and reports
it Available) and Istio's data plane (``IstioPlayer`` reads the VirtualService from the API server
on every step and sends each request where its routes say). Intervals are a few seconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.config import OperatorConfig
from slipway.devcluster import DevCluster
from slipway.devcluster.model_servers import model_server_python
from slipway.devcluster.prometheus import PrometheusServer
from slipway.k8s import Cluster

from .conftest import POOLS
from .rollout_env import (
    SELDON,
    Model,
    SeldonPlayer,
    Targets,
    make_models,
    wait_for,
)
from .rollout_objects import (
    INTERVAL,
    Operator,
    apply,
    condition,
    events,
    in_order,
    phase_is,
    rollout,
    routes,
    serving,
    status,
    weights,
)
from .rollout_traffic import Hooks, IstioPlayer


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus (built from its Go module on first use, with visible progress)."""
    with PrometheusServer(
        scrape_interval=0.5, workdir=tmp_path_factory.mktemp("prometheus")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def targets(prometheus: PrometheusServer) -> Targets:
    return Targets(prometheus)


@pytest.fixture(scope="module")
def server_python() -> Path:
    return model_server_python()


@pytest.fixture(scope="module")
def models(server_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    return make_models(server_python, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def operator(dev_cluster: DevCluster, prometheus: PrometheusServer) -> Iterator[Operator]:
    config = OperatorConfig.model_validate(
        {
            **POOLS,
            "namespace": "r-*",  # this module's namespaces only
            "analysis": "prometheus",
            "prometheus": {"url": prometheus.url, "timeoutSeconds": 5},
        }
    )
    running = Operator(config, str(dev_cluster.kubeconfig))
    yield running
    running.stop()


@pytest.fixture
def ns(kube: Cluster, operator: Operator) -> Iterator[str]:
    name = f"r-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("v1", "Namespace", None, name)


@pytest.fixture
def seldon(
    kube: Cluster, ns: str, server_python: Path, targets: Targets, tmp_path: Path
) -> Iterator[SeldonPlayer]:
    """Seldon's controller, played: real model servers for the namespace's SeldonDeployments."""
    with SeldonPlayer(kube, ns, server_python, targets, tmp_path) as player:
        yield player


def test_canary_promotes_a_good_candidate_through_every_step(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model], prometheus: Any
) -> None:
    """A good candidate goes 20%, 50%, then 100% (promoted); the previous version stays deployed
    with no traffic (keepPrevious), so reverting spec.model moves all traffic back at once."""
    old, new = models["good-1"], models["good-2"]
    apply(kube, ns, "digits", old, "Canary", keepPrevious="2m")
    serving(kube, ns, "digits", old)
    with IstioPlayer(kube, ns, "digits", seldon) as istio:
        apply(kube, ns, "digits", new, "Canary", keepPrevious="2m")
        done = phase_is(kube, ns, "digits", "Succeeded", timeout=60)
    v1, v2 = old.version, new.version
    assert in_order(
        istio.routes_seen, [[(v1, 100), (v2, 0)], [(v1, 80), (v2, 20)], [(v1, 50), (v2, 50)]]
    ), istio.routes_seen
    assert weights(routes(kube, ns, "digits")[0]) == [(v2, 100)]
    assert (done["step"], done["steps"], done["failedChecks"], done["iterations"]) == (2, 2, 0, 2)
    assert {m["name"]: m["verdict"] for m in done["metrics"]} == {
        "request-success-rate": "Passed",
        "request-duration": "Passed",
    }
    success = next(m for m in done["metrics"] if m["name"] == "request-success-rate")
    assert success["value"] == 100 and success["sampleSize"] >= 5
    assert istio.served(v2) > 0 and all(code == 200 for (_, code) in istio.codes)
    # The candidate's requests are in Prometheus, scraped from its own server.
    scraped = prometheus.query(
        f'sum(slipway_model_requests_total{{namespace="{ns}",version="{v2}"}})'
    )
    assert scraped and float(scraped[0]["value"][1]) > 0
    reasons = [reason for reason, _, _ in events(kube, ns, "digits")]
    assert {"Started", "Advanced", "Succeeded", "Promoted"} <= set(reasons), reasons
    after = status(kube, ns, "digits")
    assert after["stable"]["version"] == v2 and "candidate" not in after
    assert (after["previous"]["version"], after["previous"]["weight"]) == (v1, 0)
    kept = kube.get(SELDON, "SeldonDeployment", ns, f"digits-{v1}")
    assert kept is not None

    # Revert inside keepPrevious: the kept deployment takes all traffic in one reconcile.
    apply(kube, ns, "digits", old, "Canary", keepPrevious="2m")
    started = time.monotonic()
    wait_for(lambda: weights(routes(kube, ns, "digits")[0]) == [(v1, 100)], 10, "100% back on v1")
    assert time.monotonic() - started < 5
    again = kube.get(SELDON, "SeldonDeployment", ns, f"digits-{v1}")
    assert again is not None and again["metadata"]["uid"] == kept["metadata"]["uid"]
    reverted = status(kube, ns, "digits")
    assert reverted["stable"]["version"] == v1 and reverted["previous"]["version"] == v2
    assert "Reverted" in [reason for reason, _, _ in events(kube, ns, "digits")]


def test_canary_rolls_back_a_failing_candidate_within_threshold_intervals(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model]
) -> None:
    """A model that fails inference (HTTP 500) is rolled back after ``threshold`` failed checks:
    all traffic to the stable version at once, a RolledBack condition without Degraded, and an
    Event naming the metric and its value."""
    old, bad = models["good-1"], models["bad"]
    apply(kube, ns, "bad", old, "Canary")
    serving(kube, ns, "bad", old)
    with IstioPlayer(kube, ns, "bad", seldon) as istio:
        apply(kube, ns, "bad", bad, "Canary")
        phase_is(kube, ns, "bad", "Progressing", timeout=30)
        began = time.monotonic()
        failed = phase_is(kube, ns, "bad", "Failed", timeout=30)
        took = time.monotonic() - began
    # threshold x interval, plus scheduling and the scrape of the last failures
    assert took <= 2 * INTERVAL + 2.5, (took, events(kube, ns, "bad"))
    assert failed["reason"] == "AnalysisFailed" and failed["failedChecks"] == 2
    assert "request-success-rate 0.00% < min 99.00%" in failed["message"]
    assert istio.codes[(bad.version, 500)] > 0
    assert [weights(r) for r in routes(kube, ns, "bad")] == [[(old.version, 100)]]
    rolled = condition(kube, ns, "bad", "RolledBack")
    assert rolled["status"] == "True" and rolled["reason"] == "AnalysisFailed"
    assert condition(kube, ns, "bad", "Degraded")["status"] == "False"
    assert condition(kube, ns, "bad", "Ready")["status"] == "True"
    warnings = [m for r, t, m in events(kube, ns, "bad") if r == "RolledBack" and t == "Warning"]
    assert warnings and "request-success-rate 0.00%" in warnings[0], warnings
    wait_for(
        lambda: kube.get(SELDON, "SeldonDeployment", ns, f"bad-{bad.version}") is None,
        15,
        "the candidate's deployment removed",
    )
    # The spec still names the bad model: the operator stays on the stable one, no new rollout.
    time.sleep(INTERVAL + 1)
    assert rollout(kube, ns, "bad")["phase"] == "Failed"
    assert status(kube, ns, "bad")["phase"] == "RolledBack"
    assert "candidate" not in status(kube, ns, "bad")


def test_a_candidate_without_traffic_is_held_as_inconclusive_not_rolled_back(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model]
) -> None:
    """No request reaches the candidate (no load at all): every check is inconclusive, none is a
    failure; after inconclusiveLimit the rollout holds at its weight, and resumes once traffic
    brings evidence."""
    old, new = models["good-1"], models["good-2"]
    apply(kube, ns, "idle", old, "Canary")
    serving(kube, ns, "idle", old)
    apply(kube, ns, "idle", new, "Canary")
    held = phase_is(kube, ns, "idle", "Holding", timeout=40)
    assert (held["failedChecks"], held["weight"], held["reason"]) == (0, 20, "AnalysisInconclusive")
    assert {m["verdict"] for m in held["metrics"]} == {"Inconclusive"}
    assert "0 candidate requests" in held["message"]
    progressing = condition(kube, ns, "idle", "Progressing")
    assert progressing["status"] == "True" and progressing["reason"] == "AnalysisInconclusive"
    time.sleep(3 * INTERVAL)  # more inconclusive checks: still held, never rolled back
    still = rollout(kube, ns, "idle")
    assert (still["phase"], still["failedChecks"]) == ("Holding", 0)
    assert still["inconclusiveChecks"] > held["inconclusiveChecks"]
    with IstioPlayer(kube, ns, "idle", seldon):
        phase_is(kube, ns, "idle", "Succeeded", timeout=60)


def test_confirm_promotion_holds_until_the_webhook_answers_2xx(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model]
) -> None:
    old, new = models["good-1"], models["good-2"]
    with Hooks(answer={"/confirm": 403}).running() as hooks:
        hook = [{"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/confirm"}]
        apply(kube, ns, "gated", old, "Canary", stepWeights=[50], webhooks=hook)
        serving(kube, ns, "gated", old)
        with IstioPlayer(kube, ns, "gated", seldon):
            apply(kube, ns, "gated", new, "Canary", stepWeights=[50], webhooks=hook)
            waiting = phase_is(kube, ns, "gated", "WaitingPromotion", timeout=40)
            # Analysis goes on while promotion waits; traffic stays at the last step.
            wait_for(
                lambda: rollout(kube, ns, "gated")["iterations"] >= waiting["iterations"] + 2,
                4 * INTERVAL,
                "two more checks while waiting",
            )
            assert rollout(kube, ns, "gated")["phase"] == "WaitingPromotion"
            assert weights(routes(kube, ns, "gated")[0]) == [(old.version, 50), (new.version, 50)]
            asked = hooks.count("/confirm")
            assert asked >= 2
            hooks.answer["/confirm"] = 200
            done = phase_is(kube, ns, "gated", "Succeeded", timeout=3 * INTERVAL)
    assert done["weight"] == 100
    call = hooks.calls["/confirm"][-1]
    assert (call["name"], call["namespace"], call["hook"]) == (
        "gated",
        ns,
        {"name": "gate", "type": "confirm-promotion"},
    )
    assert call["candidate"]["version"] == new.version
    assert call["stable"]["modelDigest"] == old.digest
    assert (call["phase"], call["step"], call["weight"]) == ("WaitingPromotion", 1, 50)
    gate = next(w for w in done["webhooks"] if w["name"] == "gate")
    assert gate["passed"] and gate["code"] == 200


def test_a_rollback_webhook_answering_2xx_aborts_the_rollout(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model]
) -> None:
    old, new = models["good-1"], models["good-2"]
    with Hooks(answer={"/abort": 404}).running() as hooks:
        hook = [{"name": "kill-switch", "type": "rollback", "url": f"{hooks.url}/abort"}]
        steps = {"stepWeights": [20, 40, 60, 80], "maxWeight": 80}
        apply(kube, ns, "abort", old, "Canary", webhooks=hook, **steps)
        serving(kube, ns, "abort", old)
        with IstioPlayer(kube, ns, "abort", seldon):
            apply(kube, ns, "abort", new, "Canary", webhooks=hook, **steps)
            wait_for(lambda: rollout(kube, ns, "abort").get("step", 0) >= 2, 30, "the second step")
            assert hooks.count("/abort") >= 1  # asked at every check; 404 means carry on
            hooks.answer["/abort"] = 200
            failed = phase_is(kube, ns, "abort", "Failed", timeout=3 * INTERVAL)
    assert failed["reason"] == "RollbackRequested"
    assert "kill-switch" in failed["message"]
    assert [weights(r) for r in routes(kube, ns, "abort")] == [[(old.version, 100)]]


def test_an_operator_restart_resumes_the_rollout_at_the_same_step(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model], operator: Operator
) -> None:
    """The rollout's state lives in status.rollout: a new operator process continues from the
    step the old one reached, and gates that passed (confirm-rollout, pre-rollout) are not asked
    again."""
    old, new = models["good-1"], models["good-2"]
    with Hooks().running() as hooks:
        gates = [
            {"name": "go", "type": "confirm-rollout", "url": f"{hooks.url}/go"},
            {"name": "prepare", "type": "pre-rollout", "url": f"{hooks.url}/prepare"},
        ]
        steps = [10, 20, 30, 40]
        apply(kube, ns, "resume", old, "Canary", stepWeights=steps, webhooks=gates)
        serving(kube, ns, "resume", old)
        with IstioPlayer(kube, ns, "resume", seldon) as istio:
            apply(kube, ns, "resume", new, "Canary", stepWeights=steps, webhooks=gates)
            wait_for(lambda: rollout(kube, ns, "resume").get("step") == 2, 30, "step 2")
            operator.stop()
            before = rollout(kube, ns, "resume")
            time.sleep(INTERVAL)  # a check comes due while no operator runs
            assert rollout(kube, ns, "resume") == before
            operator.start()
            seen: list[int] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                now = rollout(kube, ns, "resume")
                seen.append(int(now.get("step", 0)))
                if now.get("phase") == "Succeeded":
                    break
                time.sleep(0.2)
    assert before["step"] == 2 and before["phase"] == "Progressing"
    assert seen[-1] == 4 and min(seen) == 2, seen  # resumed at step 2, never back to step 1
    assert rollout(kube, ns, "resume")["phase"] == "Succeeded"
    assert hooks.count("/go") == 1 and hooks.count("/prepare") == 1
    candidate = [dict(w).get(new.version, 0) for w in istio.routes_seen]
    assert candidate == sorted(candidate), istio.routes_seen  # traffic never stepped back


def test_an_ab_test_sends_only_matching_requests_to_the_candidate(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model]
) -> None:
    old, new = models["good-1"], models["good-3"]
    match = [{"headers": {"x-user-group": {"exact": "insider"}}}]
    apply(kube, ns, "ab", old, "ABTest", match=match, iterations=3)
    serving(kube, ns, "ab", old)
    with IstioPlayer(kube, ns, "ab", seldon) as istio:
        apply(kube, ns, "ab", new, "ABTest", match=match, iterations=3)
        phase_is(kube, ns, "ab", "Progressing", timeout=30)
        http = routes(kube, ns, "ab")
        assert [r["name"] for r in http] == ["ab-test", "inference"]
        assert http[0]["match"] == match
        assert weights(http[0]) == [(new.version, 100)]
        assert weights(http[1]) == [(old.version, 100), (new.version, 0)]
        time.sleep(1)  # the load generator has read the new routes
        first = dict(istio.sent)
        time.sleep(INTERVAL)
        second = dict(istio.sent)
        assert rollout(kube, ns, "ab")["phase"] == "Progressing"  # both counts inside the test

        def delta(version: str, flagged: bool) -> int:
            return second.get((version, flagged), 0) - first.get((version, flagged), 0)

        assert delta(new.version, True) > 0 and delta(new.version, False) == 0
        assert delta(old.version, False) > 0 and delta(old.version, True) == 0
        done = phase_is(kube, ns, "ab", "Succeeded", timeout=30)
    assert done["iterations"] == 3
    assert [weights(r) for r in routes(kube, ns, "ab")] == [[(new.version, 100)]]


def test_a_shadow_candidate_gets_a_mirrored_copy_and_no_live_traffic(
    kube: Cluster, ns: str, seldon: SeldonPlayer, models: dict[str, Model], prometheus: Any
) -> None:
    old, new = models["good-1"], models["good-2"]
    apply(kube, ns, "shadow", old, "Shadow", mirrorPercentage=50, iterations=2)
    serving(kube, ns, "shadow", old)
    with IstioPlayer(kube, ns, "shadow", seldon) as istio:
        apply(kube, ns, "shadow", new, "Shadow", mirrorPercentage=50, iterations=2)
        phase_is(kube, ns, "shadow", "Progressing", timeout=30)
        (main,) = routes(kube, ns, "shadow")
        assert weights(main) == [(old.version, 100), (new.version, 0)]
        assert main["mirror"]["subset"] == new.version
        assert main["mirrorPercentage"] == {"value": 50.0}
        time.sleep(INTERVAL)
        assert istio.mirrored[new.version] > 0 and istio.served(new.version) == 0
        query = f'sum(slipway_model_requests_total{{namespace="{ns}",version="{new.version}"}})'
        wait_for(  # judged on its own metrics: the mirrored requests, scraped from its server
            lambda: (r := prometheus.query(query)) and float(r[0]["value"][1]) > 0,
            5,
            f"the candidate's requests in Prometheus (targets {prometheus.active_targets()})",
        )
        done = phase_is(kube, ns, "shadow", "Succeeded", timeout=30)
    assert done["iterations"] == 2
    assert [weights(r) for r in routes(kube, ns, "shadow")] == [[(new.version, 100)]]
    assert "mirror" not in routes(kube, ns, "shadow")[0]
