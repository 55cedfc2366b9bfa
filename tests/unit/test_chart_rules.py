"""The Helm chart's RBAC is the operator's resource table, and the table is enforced.

The chart is rendered with helm (``helm template``, offline) in both of its modes, and its rules
must grant exactly what ``slipway.k8s.resources.rbac_rules`` derives from the table: no verb or
resource the code never uses, none missing. The operator's client refuses any call the table does
not declare (``require``), so a call added without its row fails before it reaches a cluster.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.api.v1alpha1 import KINDS
from slipway.devcluster.binaries import ensure_helm
from slipway.k8s.resources import (
    CLUSTER_WIDE,
    NAMESPACED,
    RESOURCES,
    Undeclared,
    rbac_rules,
    require,
)
from slipway.runner import PEERING

CHART = Path(__file__).resolve().parents[2] / "charts" / "slipway"
RELEASE, RELEASE_NAMESPACE = "mlops", "ops-system"  # not the chart's name: names must follow
FULLNAME = "mlops-slipway"
Rules = set[tuple[str, str, str]]


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm()


def template(helm: Path, *values: str) -> subprocess.CompletedProcess[str]:
    sets = [arg for value in values for arg in ("--set", value)]
    return subprocess.run(
        [
            *(str(helm), "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE),
            *("--kube-version", "v1.34.4", *sets),
        ],
        capture_output=True,
        text=True,
    )


def render(helm: Path, *values: str) -> list[dict[str, Any]]:
    result = template(helm, *values)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s rendered"
    return found[0]


def granted(role: dict[str, Any]) -> Rules:
    """Every (apiGroup, resource, verb) a role grants; each kind is on one rule of its own."""
    triples: Rules = set()
    seen: set[tuple[str, str]] = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no names, no URLs
        assert len(rule["verbs"]) == len(set(rule["verbs"])), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in seen, f"{group}/{resource} on two rules"
                seen.add((group, resource))
                triples.update((group, resource, verb) for verb in rule["verbs"])
    return triples


def describe(extra: Rules, missing: Rules) -> str:
    return f"granted but never used: {sorted(extra)}; used but not granted: {sorted(missing)}"


def assert_same(rendered: Rules, table: Rules) -> None:
    assert rendered == table, describe(rendered - table, table - rendered)


def test_cluster_wide_grants_exactly_the_table(helm: Path) -> None:
    docs = render(helm)
    expected = rbac_rules(CLUSTER_WIDE)
    assert not expected["Role"]
    assert_same(granted(one(docs, "ClusterRole")), expected["ClusterRole"])
    assert not [doc for doc in docs if doc["kind"] in ("Role", "RoleBinding", "KopfPeering")]
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == FULLNAME
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}
    ]
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == PEERING


def test_one_namespace_grants_exactly_the_table_in_a_role(helm: Path) -> None:
    docs = render(helm, "watchNamespace=team-a")
    expected = rbac_rules(NAMESPACED)
    assert_same(granted(one(docs, "ClusterRole")), expected["ClusterRole"])
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == "team-a"
    assert_same(granted(role), expected["Role"])
    # Only cluster-scoped kinds are granted cluster-wide in this mode.
    assert {name for _, name, _ in expected["ClusterRole"]} == {
        "customresourcedefinitions",
        "namespaces",
    }
    binding = one(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": FULLNAME,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}
    ]
    # A namespaced kopf operator waits forever without a KopfPeering in the namespace it serves.
    peering = one(docs, "KopfPeering")
    assert (peering["metadata"]["name"], peering["metadata"]["namespace"]) == (PEERING, "team-a")
    assert not [doc for doc in docs if doc["kind"] == "ClusterKopfPeering"]
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    assert config["namespace"] == "team-a"


@pytest.mark.parametrize(
    ("value", "message"),
    [("team-*", "is a glob"), ("team-[ab]", "is a glob"), ("Team_A", "is not a namespace name")],
)
def test_a_glob_or_a_bad_name_is_refused_with_a_clear_message(
    helm: Path, value: str, message: str
) -> None:
    result = template(helm, f"watchNamespace={value}")
    assert result.returncode != 0
    assert f'watchNamespace "{value}" {message}' in result.stderr


def test_every_slipway_kind_has_a_row() -> None:
    for kind in KINDS:
        assert (f"{kind.info.group}/{kind.info.version}", kind.info.kind) in RESOURCES


MD = "/apis/slipway.dev/v1alpha1/namespaces/ml/modeldeployments"
SDEP = "/apis/machinelearning.seldon.io/v1/namespaces/ml/seldondeployments"
DS = "/apis/slipway.dev/v1alpha1/namespaces/ml/datasets"
APPLY = "application/apply-patch+yaml"


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("GET", f"{MD}/digits", None),  # get
        ("GET", "/apis/slipway.dev/v1alpha1/modeldeployments", None),  # list, all namespaces
        ("PATCH", f"{MD}/digits/status", "application/merge-patch+json"),
        ("PATCH", f"{SDEP}/digits-v1", APPLY),  # patch + create
        ("DELETE", f"{SDEP}/digits-v1", None),
        ("POST", "/api/v1/namespaces/ml/events", "application/json"),
        ("GET", "/api/v1/namespaces/ml/services/digits", None),
        ("GET", "/apis/kopf.dev/v1/clusterkopfpeerings/slipway", None),
        ("GET", "/apis/kopf.dev/v1/namespaces/ml/kopfpeerings/slipway", None),
    ],
)
def test_declared_calls_pass(method: str, path: str, content_type: str | None) -> None:
    require(method, path, content_type)


@pytest.mark.parametrize(
    ("method", "path", "content_type", "named"),
    [
        ("POST", MD, "application/json", "create on modeldeployments"),
        ("DELETE", f"{MD}/digits", None, "delete on modeldeployments"),
        ("PATCH", f"{MD}/digits", APPLY, "create on modeldeployments"),  # apply may create
        ("PATCH", "/api/v1/namespaces/ml/events/e1", None, "patch on events"),
        ("GET", f"{MD}/digits/status", None, "get on modeldeployments/status"),
        ("DELETE", f"{DS}/d", None, "delete on datasets"),
        ("GET", "/api/v1/namespaces/ml", None, "get on namespaces"),
        (
            "GET",
            "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes",
            None,
            "list on clustertrainingruntimes",
        ),
        ("DELETE", SDEP, None, "deletecollection on seldondeployments"),
    ],
)
def test_undeclared_calls_are_refused(
    method: str, path: str, content_type: str | None, named: str
) -> None:
    with pytest.raises(Undeclared, match=f"needs {named} "):
        require(method, path, content_type)


def test_unknown_paths_are_refused() -> None:
    with pytest.raises(Undeclared, match="nothing in Slipway's resource table"):
        require("GET", "/apis/apps/v1/namespaces/ml/deployments")
    with pytest.raises(Undeclared, match="not a resource path"):
        require("GET", "/version")
