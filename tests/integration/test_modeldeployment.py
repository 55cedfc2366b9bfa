"""ModelDeployment end to end against the real API server, with the operator running.

Seldon's controller does not run here, so these tests play it: they patch a SeldonDeployment's
``status.state`` to ``Available`` (or ``Failed``) through the API, as Seldon's operator does once
its pods are ready. Istio's control plane is not needed: the VirtualService and DestinationRule are
checked as objects, validated by their CRD schemas.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from slipway.devcluster import DevCluster
from slipway.handlers.resync import Peering, resync_once
from slipway.k8s import Cluster, connect
from slipway.runner import RunningOperator

from .conftest import eventually, writes_in

API = "slipway.dev/v1alpha1"
SELDON = "machinelearning.seldon.io/v1"
ISTIO = "networking.istio.io/v1"
V1 = ("s3://models/digits/1/model.onnx", "sha256:" + "1a" * 32)
V2 = ("s3://models/digits/2/model.onnx", "sha256:" + "2b" * 32)


def model_deployment(
    name: str, namespace: str, model: tuple[str, str], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"uri": model[0], "digest": model[1]}, **spec},
    }


def md(kube: Cluster, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get(API, "ModelDeployment", ns, name)
    assert obj is not None
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def wait_condition(kube: Cluster, ns: str, name: str, type_: str, status: str) -> dict[str, Any]:
    """The condition once it has ``status``."""
    return dict(
        eventually(
            lambda: (c := condition(md(kube, ns, name), type_)).get("status") == status and c,
            what=f"{name}: {type_}={status}",
        )
    )


def trained(model: dict[str, str]) -> dict[str, Any]:
    """A TrainingJob's status as its reconciler writes it once the job's run has succeeded
    (played: no trainer runs here), so the operator takes the job as settled and leaves it."""
    run = {
        "name": "played",
        "provider": "pipelines/none",
        "generation": 1,
        "state": "SUCCEEDED",
        "datasetUri": "pvc://datasets/digits/v1",
    }
    return {"observedGeneration": 1, "phase": "Succeeded", "run": run, "model": model}


def apply_training_job(
    kube: Cluster, ns: str, job: str, report: dict[str, Any] | None = None
) -> None:
    """A TrainingJob, with the status its trainer would report (if any) played."""
    kube.apply(
        {
            "apiVersion": API,
            "kind": "TrainingJob",
            "metadata": {"name": job, "namespace": ns},
            "spec": {"dataset": {"name": "digits", "version": "v1"}},
        }
    )
    if report:
        kube.patch_status(API, "TrainingJob", ns, job, report)


def deploy_from_training_job(kube: Cluster, ns: str, name: str, job: str) -> None:
    manifest = model_deployment(name, ns, V1)
    manifest["spec"]["model"] = {"trainingJobRef": {"name": job}}
    kube.apply(manifest)


def play_seldon(kube: Cluster, ns: str, name: str, state: str = "Available") -> None:
    """What Seldon's controller does when the deployment's pods are ready (or fail)."""
    eventually(lambda: kube.get(SELDON, "SeldonDeployment", ns, name), what=f"sdep {name}")
    kube.patch_status(SELDON, "SeldonDeployment", ns, name, {"state": state, "description": state})


def routes(kube: Cluster, ns: str, name: str) -> list[tuple[str, int]]:
    vs = kube.get(ISTIO, "VirtualService", ns, name) or {"spec": {"http": [{"route": []}]}}
    return [(r["destination"]["subset"], r["weight"]) for r in vs["spec"]["http"][0]["route"]]


@pytest.mark.usefixtures("operator")
def test_serve_split_promote_and_delete(kube: Cluster, namespace: str) -> None:
    ns = namespace
    kube.apply(model_deployment("digits", ns, V1, placement={"nodePool": "gpu", "gpus": 1}))
    v1 = "v" + V1[1][7:15]
    sdep = eventually(lambda: kube.get(SELDON, "SeldonDeployment", ns, f"digits-{v1}"), what="sdep")
    pod = sdep["spec"]["predictors"][0]["componentSpecs"][0]
    labels = pod["metadata"]["labels"]
    assert (labels["app"], labels["version"], labels["slipway.dev/modeldeployment"]) == (
        "digits",
        v1,
        "digits",
    )
    assert pod["spec"]["nodeSelector"] == {"slipway.dev/pool": "gpu"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert (
        sdep["metadata"]["ownerReferences"][0]["uid"] == md(kube, ns, "digits")["metadata"]["uid"]
    )
    assert kube.get("v1", "Service", ns, "digits") is not None
    assert kube.get(ISTIO, "DestinationRule", ns, "digits") is not None
    assert eventually(lambda: routes(kube, ns, "digits") == [(v1, 100)], what="100% route")
    waiting = eventually(lambda: condition(md(kube, ns, "digits"), "Progressing"), what="status")
    assert waiting["status"] == "True" and waiting["reason"] == "WaitingForDeployment"

    play_seldon(kube, ns, f"digits-{v1}")
    eventually(
        lambda: condition(md(kube, ns, "digits"), "Ready").get("status") == "True",
        what="Ready after Seldon reports Available",
    )

    # A new model: its own SeldonDeployment, no traffic until ready, then the spec's 90/10 split.
    kube.apply(model_deployment("digits", ns, V2, placement={"nodePool": "gpu", "gpus": 1}))
    v2 = "v" + V2[1][7:15]
    eventually(lambda: md(kube, ns, "digits")["status"].get("candidate"), what="candidate")
    assert routes(kube, ns, "digits") == [(v1, 100), (v2, 0)]
    assert condition(md(kube, ns, "digits"), "Progressing")["reason"] == "CandidateNotReady"
    play_seldon(kube, ns, f"digits-{v2}")
    eventually(lambda: routes(kube, ns, "digits") == [(v1, 90), (v2, 10)], what="90/10 split")
    status = eventually(
        lambda: (s := md(kube, ns, "digits")["status"])["candidate"]["weight"] == 10 and s,
        what="weights in status",
    )
    assert (status["stable"]["version"], status["stable"]["weight"]) == (v1, 90)
    assert (status["candidate"]["version"], status["candidate"]["ready"]) == (v2, True)
    dr = kube.get(ISTIO, "DestinationRule", ns, "digits")
    assert dr is not None
    assert [s["name"] for s in dr["spec"]["subsets"]] == [v1, v2]

    # candidateWeight 100 promotes: all traffic to v2, then v1's deployment goes away.
    kube.apply(
        model_deployment(
            "digits",
            ns,
            V2,
            placement={"nodePool": "gpu", "gpus": 1},
            rollout={"candidateWeight": 100},
        )
    )
    eventually(lambda: routes(kube, ns, "digits") == [(v2, 100)], what="promotion")
    eventually(
        lambda: kube.get(SELDON, "SeldonDeployment", ns, f"digits-{v1}") is None,
        what="old version removed",
    )
    assert md(kube, ns, "digits")["status"]["stable"]["version"] == v2

    # Deleting the ModelDeployment removes its children (owner references + garbage collector).
    kube.delete(API, "ModelDeployment", ns, "digits")
    for api, kind, name in [
        (SELDON, "SeldonDeployment", f"digits-{v2}"),
        (ISTIO, "VirtualService", "digits"),
        (ISTIO, "DestinationRule", "digits"),
        ("v1", "Service", "digits"),
    ]:
        eventually(
            lambda api=api, kind=kind, name=name: kube.get(api, kind, ns, name) is None,
            timeout=60,
            what=f"{kind} {name} garbage-collected",
        )


@pytest.mark.usefixtures("operator")
def test_children_are_restored_without_a_finalizer(kube: Cluster, namespace: str) -> None:
    """Deleted or overwritten children come back, driven by watches on them, not by a timer (a
    kopf timer would put a finalizer on every ModelDeployment)."""
    ns = namespace
    kube.apply(model_deployment("drift", ns, V1))
    v1 = "v" + V1[1][7:15]
    play_seldon(kube, ns, f"drift-{v1}")
    eventually(lambda: condition(md(kube, ns, "drift"), "Ready").get("status") == "True", what="ok")
    assert not md(kube, ns, "drift")["metadata"].get("finalizers")

    kube.delete(ISTIO, "VirtualService", ns, "drift")
    eventually(lambda: routes(kube, ns, "drift") == [(v1, 100)], what="VirtualService restored")

    # Someone else takes over a field the operator owns (a forced server-side apply).
    dr = kube.get(ISTIO, "DestinationRule", ns, "drift")
    assert dr is not None
    host = dr["spec"]["host"]
    kube.apply(
        {
            "apiVersion": ISTIO,
            "kind": "DestinationRule",
            "metadata": {"name": "drift", "namespace": ns},
            "spec": {"host": "elsewhere.example.com"},
        }
    )
    eventually(
        lambda: (kube.get(ISTIO, "DestinationRule", ns, "drift") or {})["spec"]["host"] == host,
        what="DestinationRule host restored",
    )

    kube.delete(SELDON, "SeldonDeployment", ns, f"drift-{v1}")
    eventually(
        lambda: kube.get(SELDON, "SeldonDeployment", ns, f"drift-{v1}"),
        what="SeldonDeployment recreated",
    )
    # Not Ready again until Seldon reports the new deployment.
    waiting = wait_condition(kube, ns, "drift", "Progressing", "True")
    assert waiting["reason"] == "WaitingForDeployment"


def test_resync_restores_what_no_event_reported(
    kube: Cluster, namespace: str, operator: RunningOperator, dev_cluster: DevCluster
) -> None:
    """A change the watches ignore (made under the operator's own field manager, as a replica of
    the same operator would) is undone by a resync pass, and only by the leading replica."""
    ns = namespace
    kube.apply(model_deployment("resync", ns, V1))
    play_seldon(kube, ns, "resync-v" + V1[1][7:15])
    wait_condition(kube, ns, "resync", "Ready", "True")
    live = kube.get(ISTIO, "DestinationRule", ns, "resync") or {}
    host = live["spec"]["host"]
    same_manager = connect(str(dev_cluster.kubeconfig), field_manager="slipway")
    # What a replica of the same operator with another idea of the host would apply: the whole
    # object, owner reference and labels included, with one value changed.
    meta = {k: live["metadata"][k] for k in ("name", "namespace", "labels", "ownerReferences")}
    same_manager.apply(
        {
            "apiVersion": ISTIO,
            "kind": "DestinationRule",
            "metadata": meta,
            "spec": {**live["spec"], "host": "elsewhere.example.com"},
        },
        check_first=False,
    )

    def current_host() -> str:
        return str((kube.get(ISTIO, "DestinationRule", ns, "resync") or {})["spec"]["host"])

    # A live replica of priority 20 leads this namespace: a replica of priority 10 stands by.
    seen = datetime.datetime.now(datetime.UTC).isoformat()
    kube.apply(
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": "slipway", "namespace": ns},
            "status": {"leader": {"priority": 20, "lastseen": seen, "lifetime": 60}},
        }
    )
    resync_once(operator.ctx, Peering("slipway", 10))
    assert current_host() == "elsewhere.example.com"

    resync_once(operator.ctx, Peering("slipway", 30))
    assert current_host() == host


@pytest.mark.usefixtures("operator")
def test_model_from_a_training_job_follows_its_status(kube: Cluster, namespace: str) -> None:
    """The ModelDeployment follows its TrainingJob: missing, then created without a model, then
    reporting one (the trainer's report is played through the status subresource). No retry
    timer is involved: the TrainingJob's own changes reconcile the ModelDeployment."""
    deploy_from_training_job(kube, namespace, "from-job", "trained")
    missing = wait_condition(kube, namespace, "from-job", "Degraded", "True")
    assert missing["reason"] == "ModelNotFound"

    apply_training_job(kube, namespace, "trained")
    waiting = wait_condition(kube, namespace, "from-job", "Progressing", "True")
    assert waiting["reason"] == "WaitingForModel"
    assert condition(md(kube, namespace, "from-job"), "Degraded")["status"] == "False"
    assert kube.get("v1", "Service", namespace, "from-job") is None

    kube.patch_status(
        API, "TrainingJob", namespace, "trained", trained({"uri": V2[0], "digest": V2[1]})
    )
    v2 = "v" + V2[1][7:15]
    eventually(
        lambda: kube.get(SELDON, "SeldonDeployment", namespace, f"from-job-{v2}"),
        what="the TrainingJob's model deployed",
    )
    lineage = md(kube, namespace, "from-job")["status"]["lineage"]
    assert lineage["trainingJob"] == "trained"


@pytest.mark.usefixtures("operator")
def test_reverting_the_model_rolls_back(kube: Cluster, namespace: str) -> None:
    ns = namespace
    kube.apply(model_deployment("rb", ns, V1))
    v1, v2 = "v" + V1[1][7:15], "v" + V2[1][7:15]
    play_seldon(kube, ns, f"rb-{v1}")
    kube.apply(model_deployment("rb", ns, V2))
    eventually(lambda: kube.get(SELDON, "SeldonDeployment", ns, f"rb-{v2}"), what="candidate")
    kube.apply(model_deployment("rb", ns, V1))
    eventually(
        lambda: kube.get(SELDON, "SeldonDeployment", ns, f"rb-{v2}") is None,
        what="candidate removed",
    )
    assert eventually(lambda: routes(kube, ns, "rb") == [(v1, 100)], what="all traffic on v1")


@pytest.mark.usefixtures("operator")
def test_failed_candidate_is_degraded_and_gets_no_traffic(kube: Cluster, namespace: str) -> None:
    ns = namespace
    v1, v2 = "v" + V1[1][7:15], "v" + V2[1][7:15]
    kube.apply(model_deployment("fc", ns, V1))
    play_seldon(kube, ns, f"fc-{v1}")
    kube.apply(model_deployment("fc", ns, V2))
    play_seldon(kube, ns, f"fc-{v2}", state="Failed")
    degraded = wait_condition(kube, ns, "fc", "Degraded", "True")
    assert degraded["reason"] == "CandidateFailed"
    assert condition(md(kube, ns, "fc"), "Ready")["status"] == "True"  # v1 still serves
    assert routes(kube, ns, "fc") == [(v1, 100), (v2, 0)]


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    ("spec", "reason", "message"),
    [
        (
            {"placement": {"nodePool": "tpu"}},
            "UnknownNodePool",
            "spec.placement.nodePool 'tpu' is not a configured node pool (gpu, cpu)",
        ),
        (
            {"model": {"trainingJobRef": {"name": "missing"}}},
            "ModelNotFound",
            "spec.model.trainingJobRef: TrainingJob 'missing' does not exist",
        ),
        (
            {
                "rollout": {
                    "strategy": "Canary",
                    "analysis": {
                        "metrics": [
                            {"name": "errors", "thresholdRange": {"max": 1}, "query": "{{ pod }}"}
                        ]
                    },
                }
            },
            "InvalidSpec",
            "unknown template variables ['pod']",
        ),
    ],
    ids=["unknown-pool", "missing-training-job", "unknown-query-variable"],
)
def test_bad_references_degrade_without_children(
    kube: Cluster, namespace: str, spec: dict[str, Any], reason: str, message: str
) -> None:
    manifest = model_deployment("bad", namespace, V1)
    manifest["spec"].update(spec)
    kube.apply(manifest)
    degraded = eventually(lambda: condition(md(kube, namespace, "bad"), "Degraded"), what="status")
    assert degraded["status"] == "True" and degraded["reason"] == reason
    assert message in degraded["message"]
    assert kube.get(ISTIO, "VirtualService", namespace, "bad") is None
    assert kube.get("v1", "Service", namespace, "bad") is None


@pytest.mark.usefixtures("operator")
def test_malformed_uri_from_a_training_job_degrades(kube: Cluster, namespace: str) -> None:
    # Play the trainer's report with a model URI no server could fetch.
    report = trained({"uri": "models/tj.onnx", "digest": V1[1]})
    apply_training_job(kube, namespace, "tj", report)
    deploy_from_training_job(kube, namespace, "from-tj", "tj")
    degraded = wait_condition(kube, namespace, "from-tj", "Degraded", "True")
    assert degraded["reason"] == "InvalidModelURI"
    assert "'models/tj.onnx'" in degraded["message"]
    assert kube.get("v1", "Service", namespace, "from-tj") is None


@pytest.mark.usefixtures("operator")
def test_long_names_give_valid_child_names(kube: Cluster, namespace: str) -> None:
    name = "m" + "-long" * 40  # 201 characters: a valid object name, too long for a label
    kube.apply(model_deployment(name, namespace, V1))
    status = eventually(
        lambda: md(kube, namespace, name).get("status", {}).get("stable"), what="stable version"
    )
    child = status["seldonDeployment"]
    assert len(child) <= 40
    assert kube.get(SELDON, "SeldonDeployment", namespace, child) is not None


def test_steady_state_reconcile_writes_nothing(
    kube: Cluster, namespace: str, operator: RunningOperator
) -> None:
    from slipway.reconcilers import modeldeployment as reconciler

    kube.apply(model_deployment("steady", namespace, V1))
    v1 = "v" + V1[1][7:15]
    play_seldon(kube, namespace, f"steady-{v1}")
    eventually(
        lambda: condition(md(kube, namespace, "steady"), "Ready").get("status") == "True",
        what="Ready",
    )
    with writes_in(operator.ctx.cluster, namespace) as writes:
        for _ in range(3):
            reconciler.reconcile(operator.ctx, md(kube, namespace, "steady"))
    assert writes == []
