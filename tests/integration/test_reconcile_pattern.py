"""The reconcile pattern every kind shares, proven on ModelDeployments against the API server.

Prune by ownership (also after a failed status write), remove a field the operator stopped
setting while a no-op writes nothing, never adopt a foreign object, keep different digests apart,
report unsatisfiable placement, render pods the restricted Pod Security profile admits, and never
overwrite a newer status. Seldon's controller is played by patching SeldonDeployment status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from slipway.devcluster import DevCluster
from slipway.handlers.modeldeployment import nudge
from slipway.k8s import ApiError, Cluster, connect
from slipway.reconcilers.base import write_status
from slipway.runner import RunningOperator

from .conftest import eventually, writes_in
from .test_modeldeployment import (
    API,
    ISTIO,
    SELDON,
    V1,
    V2,
    condition,
    md,
    model_deployment,
    play_seldon,
    wait_condition,
)

pytestmark = pytest.mark.usefixtures("operator")
V3 = ("s3://models/digits/3/model.onnx", "sha256:" + "3c" * 32)
ADMISSION = "admissionregistration.k8s.io/v1"


def sdeps(kube: Cluster, ns: str) -> set[str]:
    return {o["metadata"]["name"] for o in kube.list(SELDON, "SeldonDeployment", ns)}


def vid(model: tuple[str, str]) -> str:
    return "v" + model[1][7:15]


@pytest.fixture
def status_blocked(kube: Cluster, namespace: str) -> Iterator[tuple[str, Any]]:
    """A ValidatingAdmissionPolicy that refuses every status write of ModelDeployments in this
    test's namespace, until the test calls the returned ``lift()``."""
    name = f"block-status-{namespace}"
    policy = {
        "apiVersion": ADMISSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["slipway.dev"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["modeldeployments/status"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"object.metadata.namespace != '{namespace}'",
                    "message": "status writes are blocked by the test",
                }
            ],
        },
    }
    binding = {
        "apiVersion": ADMISSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }

    # The operator's REST table has no admission kinds (it never touches them): plain calls.
    root = f"/apis/{ADMISSION}"

    def lift() -> None:
        for plural in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
            try:
                kube._call("DELETE", f"{root}/{plural}/{name}")
            except ApiError as exc:
                if exc.status != 404:
                    raise

    def arm() -> None:
        kube._call("POST", f"{root}/validatingadmissionpolicies", policy)
        kube._call("POST", f"{root}/validatingadmissionpolicybindings", binding)

    yield name, (arm, lift)
    lift()


def _status_refused(kube: Cluster, ns: str, name: str) -> bool:
    """Whether a (dry-run) status write is refused yet: policies take a moment to load."""
    path = f"/apis/{API}/namespaces/{ns}/modeldeployments/{name}/status"
    try:
        kube._call(
            "PATCH",
            path,
            {"status": {"phase": "probe"}},
            [("dryRun", "All")],
            "application/merge-patch+json",
        )
    except ApiError as exc:
        return exc.status in (400, 403, 422)
    return False


def test_children_are_pruned_by_ownership_when_status_writes_fail(
    kube: Cluster, namespace: str, status_blocked: tuple[str, Any]
) -> None:
    ns = namespace
    _, (arm, lift) = status_blocked
    kube.apply(model_deployment("m", ns, V1))
    play_seldon(kube, ns, f"m-{vid(V1)}")
    wait_condition(kube, ns, "m", "Ready", "True")

    arm()
    eventually(lambda: _status_refused(kube, ns, "m"), what="status writes refused")
    # The model changes twice while no status can be written: the first candidate is never
    # recorded in status, and must still be removed when the second replaces it.
    kube.apply(model_deployment("m", ns, V2))
    eventually(lambda: f"m-{vid(V2)}" in sdeps(kube, ns), what="first candidate")
    kube.apply(model_deployment("m", ns, V3))
    eventually(
        lambda: sdeps(kube, ns) == {f"m-{vid(V1)}", f"m-{vid(V3)}"},
        what="only the stable version and the second candidate",
    )
    assert md(kube, ns, "m")["status"].get("candidate") is None  # status never caught up

    lift()
    play_seldon(kube, ns, f"m-{vid(V3)}")
    eventually(
        lambda: ((md(kube, ns, "m")["status"].get("candidate") or {}).get("version")) == vid(V3),
        what="status records the candidate once writes are allowed",
    )
    assert sdeps(kube, ns) == {f"m-{vid(V1)}", f"m-{vid(V3)}"}


def test_a_field_the_operator_stopped_setting_is_removed_and_a_no_op_writes_nothing(
    kube: Cluster, namespace: str, operator: RunningOperator, dev_cluster: DevCluster
) -> None:
    ns = namespace
    kube.apply(model_deployment("m", ns, V1))
    play_seldon(kube, ns, f"m-{vid(V1)}")
    wait_condition(kube, ns, "m", "Ready", "True")
    ctx = operator.ctx

    # A no-op reconcile: every child read, none written, status unchanged.
    with writes_in(ctx.cluster, ns) as writes:
        nudge(ctx, [md(kube, ns, "m")])
    assert writes == []

    # What an older operator version applied under the same field manager: a label and a
    # toleration the current one no longer renders.
    old_operator = connect(str(dev_cluster.kubeconfig), field_manager=ctx.cluster.field_manager)
    sdep = kube.get(SELDON, "SeldonDeployment", ns, f"m-{vid(V1)}")
    assert sdep is not None
    stale = {k: sdep[k] for k in ("apiVersion", "kind", "spec")}
    stale["metadata"] = {
        k: sdep["metadata"][k] for k in ("name", "namespace", "labels", "ownerReferences")
    }
    stale["metadata"]["labels"] = {**stale["metadata"]["labels"], "slipway.dev/old": "yes"}
    pod = stale["spec"]["predictors"][0]["componentSpecs"][0]["spec"]
    pod["tolerations"] = [{"key": "old-pool", "operator": "Exists", "effect": "NoSchedule"}]
    old_operator.apply(stale, check_first=False)
    live = kube.get(SELDON, "SeldonDeployment", ns, f"m-{vid(V1)}")
    assert live is not None and live["metadata"]["labels"]["slipway.dev/old"] == "yes"

    # The live object is a superset of what the operator renders now; the next reconcile still
    # removes what it owns and no longer sets.
    nudge(ctx, [md(kube, ns, "m")])
    live = kube.get(SELDON, "SeldonDeployment", ns, f"m-{vid(V1)}")
    assert live is not None
    assert "slipway.dev/old" not in live["metadata"]["labels"]
    assert "tolerations" not in live["spec"]["predictors"][0]["componentSpecs"][0]["spec"]
    with writes_in(ctx.cluster, ns) as writes:
        nudge(ctx, [md(kube, ns, "m")])
    assert writes == []


def test_a_foreign_object_with_a_child_name_is_never_adopted(kube: Cluster, namespace: str) -> None:
    ns = namespace
    theirs = kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "m", "namespace": ns, "labels": {"team": "theirs"}},
            "spec": {"ports": [{"name": "web", "port": 80}], "selector": {"app": "theirs"}},
        }
    )
    kube.apply(model_deployment("m", ns, V1))
    problem = wait_condition(kube, ns, "m", "Degraded", "True")
    assert problem["reason"] == "NameConflict"
    assert f"Service {ns}/m" in problem["message"]
    live = kube.get("v1", "Service", ns, "m")
    assert live is not None
    assert live["metadata"]["resourceVersion"] == theirs["metadata"]["resourceVersion"]
    assert not live["metadata"].get("ownerReferences")
    # Nothing was half-created: the names are checked before any child is written.
    assert sdeps(kube, ns) == set()
    assert kube.get(ISTIO, "VirtualService", ns, "m") is None

    # Once the other object is gone, the next reconcile (here a change) creates the children.
    kube.delete("v1", "Service", ns, "m")
    eventually(lambda: kube.get("v1", "Service", ns, "m") is None, what="foreign Service gone")
    kube.apply(model_deployment("m", ns, V1, minReplicas=1, maxReplicas=2))
    eventually(lambda: sdeps(kube, ns) == {f"m-{vid(V1)}"}, what="children created")
    svc = eventually(lambda: kube.get("v1", "Service", ns, "m"), what="own Service")
    assert svc["metadata"]["ownerReferences"][0]["uid"] == md(kube, ns, "m")["metadata"]["uid"]


def test_digests_sharing_a_prefix_are_different_versions(kube: Cluster, namespace: str) -> None:
    ns = namespace
    twin = ("s3://models/digits/twin/model.onnx", V1[1][:15] + "f" * 56)
    assert vid(twin) == vid(V1) and twin[1] != V1[1]
    kube.apply(model_deployment("m", ns, V1))
    play_seldon(kube, ns, f"m-{vid(V1)}")
    wait_condition(kube, ns, "m", "Ready", "True")
    kube.apply(model_deployment("m", ns, twin, rollout={"candidateWeight": 50}))
    long_id = "v" + twin[1][7:23]
    eventually(lambda: sdeps(kube, ns) == {f"m-{vid(V1)}", f"m-{long_id}"}, what="two sdeps")
    stable = kube.get(SELDON, "SeldonDeployment", ns, f"m-{vid(V1)}")
    assert stable is not None
    env = {e["name"]: e["value"] for e in _container(stable)["env"]}
    assert env["SLIPWAY_MODEL_SHA256"] == V1[1]  # the stable model was not replaced in place
    play_seldon(kube, ns, f"m-{long_id}")
    status = eventually(
        lambda: (s := md(kube, ns, "m")["status"]).get("candidate", {}).get("weight") == 50 and s,
        what="candidate at 50%",
    )
    assert status["stable"]["version"] == vid(V1)
    assert status["candidate"]["version"] == long_id
    assert status["candidate"]["modelDigest"] == twin[1]


def test_gpus_on_a_cpu_only_pool_are_reported(kube: Cluster, namespace: str) -> None:
    ns = namespace
    kube.apply(model_deployment("m", ns, V1, placement={"nodePool": "cpu", "gpus": 2}))
    problem = wait_condition(kube, ns, "m", "Degraded", "True")
    assert problem["reason"] == "NoGPUsOnPool"
    assert "spec.placement.gpus" in problem["message"] and "'cpu'" in problem["message"]
    assert sdeps(kube, ns) == set()


def _container(sdep: dict[str, Any]) -> dict[str, Any]:
    return dict(sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0])


def test_rendered_pods_meet_the_restricted_profile(kube: Cluster, namespace: str) -> None:
    ns = namespace
    kube.apply(
        model_deployment(
            "m",
            ns,
            V1,
            placement={"nodePool": "gpu", "gpus": 1},
            server={"envSecretRefName": "model-store", "env": {"OMP_NUM_THREADS": "1"}},
        )
    )
    sdep = eventually(lambda: kube.get(SELDON, "SeldonDeployment", ns, f"m-{vid(V1)}"), what="sdep")
    container = _container(sdep)
    assert container["envFrom"] == [{"secretRef": {"name": "model-store"}}]
    assert all("KEY" not in e["name"] for e in container["env"])
    component = sdep["spec"]["predictors"][0]["componentSpecs"][0]

    restricted = f"{ns}-restricted"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": restricted,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "m", "namespace": restricted, **component["metadata"]},
            "spec": component["spec"],
        }
        path = f"/api/v1/namespaces/{restricted}/pods"
        created = kube._call("POST", path, pod, [("dryRun", "All"), ("fieldValidation", "Strict")])
        assert created["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
        # The same pod without the security settings is refused there: the check can fail.
        bare = {**pod, "spec": {**pod["spec"], "securityContext": {}}}
        bare["spec"]["containers"] = [
            {k: v for k, v in c.items() if k != "securityContext"}
            for c in pod["spec"]["containers"]
        ]
        with pytest.raises(ApiError) as refused:
            kube._call("POST", path, bare, [("dryRun", "All")])
        assert refused.value.status == 403 and "restricted" in str(refused.value)
    finally:
        kube.delete("v1", "Namespace", None, restricted)


def test_a_status_written_from_a_stale_read_is_refused(
    kube: Cluster, namespace: str, operator: RunningOperator
) -> None:
    ns = namespace
    kube.apply(model_deployment("m", ns, V1, placement={"nodePool": "nowhere"}))
    first = wait_condition(kube, ns, "m", "Degraded", "True")
    assert first["reason"] == "UnknownNodePool"
    stale = md(kube, ns, "m")
    # Another replica writes a newer status in the meantime.
    kube.patch_status(API, "ModelDeployment", ns, "m", {"phase": "Newer"})
    with pytest.raises(ApiError) as conflict:
        write_status(operator.ctx, stale, {**stale["status"], "phase": "Older"})
    assert conflict.value.status == 409
    assert md(kube, ns, "m")["status"]["phase"] == "Newer"


def test_a_new_problem_gets_its_event_while_the_phase_stays(kube: Cluster, namespace: str) -> None:
    ns = namespace

    def warnings() -> list[str]:
        events = kube.list("v1", "Event", ns)
        return sorted(e["message"] for e in events if e["type"] == "Warning")

    kube.apply(model_deployment("m", ns, V1, placement={"nodePool": "nowhere"}))
    eventually(lambda: len(warnings()) == 1, what="first warning")
    kube.apply(model_deployment("m", ns, V1, placement={"nodePool": "elsewhere"}))
    found = eventually(lambda: len(warnings()) == 2 and warnings(), what="second warning")
    assert md(kube, ns, "m")["status"]["phase"] == "Degraded"
    assert any("'elsewhere'" in m for m in found) and any("'nowhere'" in m for m in found)
    assert condition(md(kube, ns, "m"), "Degraded")["reason"] == "UnknownNodePool"


def test_a_lost_first_status_still_makes_the_next_model_a_candidate(
    kube: Cluster, namespace: str, status_blocked: tuple[str, Any]
) -> None:
    """No status was ever written when the model changes: the deployment that exists says which
    version was live, so the new model is a candidate and the serving one is not replaced."""
    ns = namespace
    _, (arm, lift) = status_blocked
    arm()
    kube.apply(model_deployment("probe", ns, V1))
    eventually(lambda: _status_refused(kube, ns, "probe"), what="status writes refused")
    kube.delete(API, "ModelDeployment", ns, "probe")
    kube.apply(model_deployment("m", ns, V1))
    eventually(lambda: sdeps(kube, ns) == {f"m-{vid(V1)}"}, what="first deployment")
    assert not md(kube, ns, "m").get("status")
    kube.apply(model_deployment("m", ns, V2))
    eventually(lambda: f"m-{vid(V2)}" in sdeps(kube, ns), what="candidate deployment")
    assert f"m-{vid(V1)}" in sdeps(kube, ns)

    def weights() -> list[tuple[str, int]]:
        vs = kube.get(ISTIO, "VirtualService", ns, "m") or {"spec": {"http": [{"route": []}]}}
        return [(r["destination"]["subset"], r["weight"]) for r in vs["spec"]["http"][-1]["route"]]

    assert eventually(lambda: dict(weights()).get(vid(V1)) == 100, what="stable keeps traffic")
    lift()
    status = eventually(
        lambda: (s := md(kube, ns, "m").get("status") or {}).get("candidate") and s,
        what="status once writes are allowed",
    )
    assert status["stable"]["version"] == vid(V1)
    assert status["candidate"]["version"] == vid(V2)
