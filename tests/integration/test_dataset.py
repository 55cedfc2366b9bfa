"""Datasets end to end: the operator on the real API server runs the real ingestion pipeline.

The pipelines provider is ``local`` (``conftest.local_providers``): each ingestion is the
``slipway-dataset-ingestion`` pipeline under ``kfp.local``, a detached process in the pipelines
environment, writing snapshots into the session's local store, exactly what ``make dev`` does.
Nothing is played: digests, row counts and validation reports come from the trainer's code.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from slipway.backends.storage import LocalStore
from slipway.k8s import Cluster
from slipway.reconcilers.runs import FINALIZER

from .conftest import eventually

API = "slipway.dev/v1alpha1"
RUN_TIMEOUT = 420.0  # a pipeline run on a loaded 2-core machine


def dataset(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": "builtin://digits", **spec},
    }


def get(kube: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    obj = kube.get(API, kind, namespace, name)
    assert obj is not None, f"{kind} {namespace}/{name} is gone"
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def run_logs(store: Path, prefix: str) -> str:
    """The logs of the local runs whose names start with ``prefix`` (for failure messages)."""
    logs = []
    for folder in sorted((store / "runs").glob(f"{prefix}*")):
        log = folder / "log"
        if log.is_file():
            logs.append(f"--- {folder.name}\n" + log.read_text(errors="replace")[-3000:])
    return "\n".join(logs)


def wait_for(
    kube: Cluster,
    store: Path,
    kind: str,
    namespace: str,
    name: str,
    check: Any,
    what: str,
    timeout: float = RUN_TIMEOUT,
) -> dict[str, Any]:
    """The object once ``check(obj)`` holds; on timeout the runs' logs are in the message."""
    try:
        return dict(
            eventually(
                lambda: (obj := get(kube, kind, namespace, name)) and check(obj) and obj,
                timeout=timeout,
                interval=1.0,
                what=f"{kind} {name}: {what}",
            )
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run_logs(store, name)}") from None


def phase_is(*phases: str) -> Any:
    return lambda obj: (obj.get("status") or {}).get("phase") in phases


def local_path(store: Path, uri: str) -> Path:
    path = LocalStore(store).local_path(uri)
    assert path is not None
    return path


def runs_of(store: Path, obj: dict[str, Any]) -> list[str]:
    """Names of the local runs started for ``obj`` (named after its name, generation and uid)."""
    meta = obj["metadata"]
    uid = meta["uid"].replace("-", "")[:8]
    return sorted(p.name for p in (store / "runs").glob(f"{meta['name']}-g*-{uid}"))


DIGITS_RULES = {
    "requiredColumns": [{"name": "label", "type": "int"}],
    "minRows": 1000,
    "labelColumn": "label",
    "allowedLabels": [str(d) for d in range(10)],
    "minClassFraction": 0.05,
}


@pytest.mark.usefixtures("operator")
def test_versions_by_digest_and_retention(kube: Cluster, namespace: str, local_store: Path) -> None:
    """One Dataset through three ingestions: a first version; the same data under a stricter
    rule (a new run, the same digest, no new version); other data (a new version). Retention
    keeps one version, yet never the one a TrainingJob references, and deletes no data."""
    ns, store = namespace, local_store
    kube.apply(dataset("digits", ns, validation=DIGITS_RULES, retention={"keepVersions": 1}))
    ready = wait_for(kube, store, "Dataset", ns, "digits", phase_is("Ready", "Failed"), "ready")
    status = ready["status"]
    assert status["phase"] == "Ready", status
    assert status["latestVersion"] == "v1" and status["latestRows"] == 1797
    [v1] = status["versions"]
    snapshot = local_path(store, v1["uri"])
    manifest = (snapshot / "manifest.json").read_bytes()
    assert v1["digest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert status["shortDigest"] == v1["digest"][7:19]
    assert v1["validation"]["passed"] and v1["validation"]["checks"] >= 5
    assert not ready["metadata"].get("finalizers")  # none once no run is in flight
    first_run = status["ingestion"]["name"]

    # A TrainingJob pins v1 (on an unknown pool, so it never trains).
    kube.apply(
        {
            "apiVersion": API,
            "kind": "TrainingJob",
            "metadata": {"name": "pins-v1", "namespace": ns},
            "spec": {
                "dataset": {"name": "digits", "version": "v1"},
                "placement": {"nodePool": "x"},
            },
        }
    )

    stricter = {**DIGITS_RULES, "minRows": 1500}
    kube.apply(dataset("digits", ns, validation=stricter, retention={"keepVersions": 1}))
    again = wait_for(
        kube,
        store,
        "Dataset",
        ns,
        "digits",
        lambda o: (
            o["status"]["ingestion"]["name"] != first_run
            and o["status"]["ingestion"].get("outcome")
        ),
        "second ingestion",
    )["status"]
    assert again["ingestion"]["outcome"] == "Unchanged"
    assert [v["version"] for v in again["versions"]] == ["v1"]
    assert again["latestDigest"] == v1["digest"]

    kube.apply(dataset("digits", ns, source="builtin://iris", retention={"keepVersions": 1}))
    iris = wait_for(
        kube,
        store,
        "Dataset",
        ns,
        "digits",
        lambda o: o["status"].get("latestVersion") == "v2" or o["status"]["phase"] == "Failed",
        "version v2",
    )["status"]
    assert iris["latestVersion"] == "v2" and iris["latestRows"] == 150, iris
    assert [v["version"] for v in iris["versions"]] == ["v1", "v2"]  # v1 is referenced

    # Once nothing references v1 it leaves the record, and its data stays where it was.
    kube.delete(API, "TrainingJob", ns, "pins-v1")
    eventually(lambda: kube.get(API, "TrainingJob", ns, "pins-v1") is None, what="job gone")
    kube.apply(dataset("digits", ns, source="builtin://iris", retention={"keepVersions": 2}))
    kube.apply(dataset("digits", ns, source="builtin://iris", retention={"keepVersions": 1}))
    wait_for(
        kube,
        store,
        "Dataset",
        ns,
        "digits",
        lambda o: [v["version"] for v in o["status"]["versions"]] == ["v2"],
        "v1 forgotten",
        timeout=30,
    )
    assert (snapshot / "manifest.json").read_bytes() == manifest
    # One run per data-defining change, no more.
    assert len(runs_of(store, get(kube, "Dataset", ns, "digits"))) == 3


@pytest.mark.usefixtures("operator")
def test_validation_failure_is_degraded_once(
    kube: Cluster, namespace: str, local_store: Path
) -> None:
    """A failing rule: Degraded with the rule in the message, no version, and no retries."""
    ns, store = namespace, local_store
    kube.apply(dataset("strict", ns, validation={"minRows": 5000}))
    failed = wait_for(kube, store, "Dataset", ns, "strict", phase_is("Failed", "Ready"), "failed")
    degraded = condition(failed, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "ValidationFailed", degraded
    assert "minRows" in degraded["message"] and "1797 rows" in degraded["message"]
    assert condition(failed, "Ready")["status"] == "False"
    assert not failed["status"].get("versions")
    assert FINALIZER not in (failed["metadata"].get("finalizers") or [])
    before = failed["metadata"]["resourceVersion"]
    time.sleep(8)  # no retry storm: nothing is written or started again
    assert get(kube, "Dataset", ns, "strict")["metadata"]["resourceVersion"] == before
    assert len(runs_of(store, failed)) == 1
