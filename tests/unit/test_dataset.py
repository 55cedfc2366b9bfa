"""The Dataset reconciler's decisions, without an API server: what re-ingests, how a finished
run becomes a version (digest from the manifest bytes), retention, and the trainer's rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from slipway.api.v1alpha1.dataset import DatasetSpec, Validation
from slipway.backends.storage import LocalStore
from slipway.builders.meta import Owner
from slipway.config import OperatorConfig
from slipway.reconcilers import dataset
from slipway.reconcilers.base import Context
from slipway.reconcilers.datasetrules import rules, summary
from slipway.reconcilers.runs import Store

OWNER = Owner("slipway.dev/v1alpha1", "Dataset", "digits", "ml", "0f3c9a2e-77aa-4b1c-9d3e-1b2c3d4e")


def spec(**fields: Any) -> DatasetSpec:
    return DatasetSpec.model_validate({"source": "builtin://digits", **fields})


def test_only_data_defining_fields_ingest_again() -> None:
    base = dataset.inputs_of(spec())
    assert dataset.inputs_of(spec(retention={"keepVersions": 3, "deleteData": True})) == base
    assert dataset.inputs_of(spec(source="builtin://iris")) != base
    assert dataset.inputs_of(spec(validation={"minRows": 10})) != base
    assert dataset.inputs_of(spec(storageUri="pvc://other")) != base


def test_ingestion_run_is_named_by_uid_and_generation() -> None:
    run, uri = dataset.ingestion_run(OWNER, 3, spec(validation={"minRows": 100}))
    assert run.name == "digits-g3-0f3c9a2e" and run.namespace == "ml"
    assert run.parameters["store_uri"] == "pvc://slipway-datasets/ml"
    assert run.parameters["version"] == "g3-0f3c9a2e"
    assert uri == "pvc://slipway-datasets/ml/digits/g3-0f3c9a2e"
    assert json.loads(str(run.parameters["rules_json"]))["minRows"] == 100
    again, _ = dataset.ingestion_run(OWNER, 3, spec(validation={"minRows": 100}))
    assert again == run


def test_rules_for_the_trainer() -> None:
    validation = Validation.model_validate(
        {
            "requiredColumns": [{"name": "label", "type": "int"}],
            "labelColumn": "label",
            "allowedLabels": ["0", "1", "cat"],
            "minClassFraction": 0.05,
        }
    )
    assert rules(validation) == {
        "minRows": 1,
        "maxNullFraction": 0.0,
        "requiredColumns": {"label": "int"},
        "labelColumn": "label",
        "allowedLabels": [0, 1, "cat"],
        "minClassFraction": 0.05,
    }
    # Rules left at "not checked" are not sent: the trainer would insist on a label column.
    assert rules(Validation()) == {"minRows": 1, "maxNullFraction": 0.0}


def test_validation_summary() -> None:
    report = {
        "ok": False,
        "rows": 10,
        "checks": [
            {"rule": "minRows", "passed": False, "detail": "10 rows, need at least 100"},
            {"rule": "maxNullFraction", "passed": True, "detail": "0"},
        ],
    }
    assert summary(report) == {
        "passed": False,
        "checks": 2,
        "failed": ["minRows: 10 rows, need at least 100"],
    }
    assert summary({"ok": True, "checks": []}) == {"passed": True, "checks": 0}
    assert summary(None) is None


def snapshot(store: Path, uri: str, rows: int, data: str = "x") -> str:
    """Write a snapshot folder where ``uri`` maps in ``store``; returns its digest."""
    folder = LocalStore(store).local_path(uri)
    assert folder is not None
    folder.mkdir(parents=True)
    manifest = json.dumps({"rows": rows, "files": [{"sha256": data}]}, sort_keys=True).encode()
    (folder / "manifest.json").write_bytes(manifest)
    checks = [{"rule": r, "passed": True, "detail": ""} for r in ("minRows", "maxNullFraction")]
    (folder / "validation.json").write_text(json.dumps({"ok": True, "checks": checks}))
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def finished(uri: str, state: str = "SUCCEEDED") -> dict[str, Any]:
    return {
        "name": "digits-g2-0f3c9a2e",
        "uri": uri,
        "state": state,
        "finished": "2026-01-02T00:00:00Z",
    }


def test_a_new_digest_is_the_next_version(tmp_path: Path) -> None:
    uri = "pvc://slipway-datasets/ml/digits/g2-0f3c9a2e"
    digest = snapshot(tmp_path, uri, 1797)
    v1 = {"version": "v1", "digest": "sha256:" + "1" * 64, "rows": 5, "uri": "pvc://a"}
    record, versions, latest, problem = dataset._outcome(
        Store(LocalStore(tmp_path)), finished(uri), [v1], "v1"
    )
    assert problem is None and record["outcome"] == "NewVersion" and latest == "v2"
    assert versions[-1] == {
        "version": "v2",
        "digest": digest,
        "rows": 1797,
        "uri": uri,
        "created": "2026-01-02T00:00:00Z",
        "run": "digits-g2-0f3c9a2e",
        "validation": {"passed": True, "checks": 2},
    }


def test_the_same_digest_is_no_new_version(tmp_path: Path) -> None:
    uri = "pvc://slipway-datasets/ml/digits/g2-0f3c9a2e"
    digest = snapshot(tmp_path, uri, 1797)
    v1 = {"version": "v1", "digest": digest, "rows": 1797, "uri": "pvc://first"}
    v2 = {"version": "v2", "digest": "sha256:" + "2" * 64, "rows": 5, "uri": "pvc://b"}
    record, versions, latest, _ = dataset._outcome(
        Store(LocalStore(tmp_path)), finished(uri), [v1, v2], "v2"
    )
    assert record["outcome"] == "Unchanged" and versions == [v1, v2] and latest == "v1"


def test_an_unreadable_snapshot_is_reported_not_guessed(tmp_path: Path) -> None:
    record, versions, latest, problem = dataset._outcome(
        Store(), finished("s3://bucket/ds/g2"), [], None
    )
    assert problem is not None and problem.reason == "SnapshotUnreadable"
    assert "outcome" not in record and versions == [] and latest is None


@pytest.mark.parametrize(
    ("state", "message", "reason"),
    [
        ("FAILED", "failed rules: minRows: 10 rows, need at least 100", "ValidationFailed"),
        ("FAILED", "could not read s3://x", "IngestionFailed"),
        ("CANCELED", "canceled", "IngestionCanceled"),
        ("SKIPPED", "no pipelines backend is configured", "NoPipelinesBackend"),
    ],
)
def test_failures_are_degraded_with_their_reason(state: str, message: str, reason: str) -> None:
    record = {"name": "r", "state": state, "message": message, "outcome": "Failed"}
    verdict = dataset.judge(record, [], None)
    assert verdict.degraded and not verdict.ready and verdict.reason == reason
    assert message in verdict.message and verdict.phase == "Failed"
    v1 = {"version": "v1", "digest": "sha256:" + "1" * 64, "rows": 5}
    kept = dataset.judge(record, [v1], "v1")
    assert kept.ready and kept.phase == "Degraded" and "v1 stays the latest" in kept.message


class Listing:
    """A cluster that lists the given TrainingJobs (the one call retention makes)."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        assert kind == "TrainingJob" and namespace == "ml"
        return self.jobs


def test_retention_keeps_the_latest_and_referenced_versions() -> None:
    versions = [{"version": f"v{i}", "digest": f"sha256:{i}"} for i in range(1, 6)]
    jobs = [
        {"spec": {"dataset": {"name": "digits", "version": "v1"}}},
        {"spec": {"dataset": {"name": "digits", "digest": "sha256:3"}}},
        {"spec": {"dataset": {"name": "other", "version": "v2"}}},
    ]
    ctx: Any = type("Ctx", (), {"cluster": Listing(jobs)})()
    body = {"metadata": {"namespace": "ml", "name": "digits"}}
    kept, dropped = dataset._retain(ctx, body, spec(retention={"keepVersions": 2}), versions, "v4")
    assert [v["version"] for v in dropped] == ["v2", "v5"]
    assert [v["version"] for v in kept] == ["v1", "v3", "v4"]  # more than 2: all are in use


class Recorder:
    """An API server stand-in for one reconcile: serves objects, records status patches."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"]): o for o in objects}
        self.events: list[str] = []
        self.finalizer_patches = 0

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Any:
        return self.objects.get((kind, name))

    def list(self, api_version: str, kind: str, namespace: str, *_: Any) -> list[Any]:
        return [o for (k, _n), o in self.objects.items() if k == kind]

    def patch_status(self, api_version: str, kind: str, ns: str, name: str, status: Any, **_: Any):
        obj = self.objects[(kind, name)]
        merged = {**(obj.get("status") or {}), **status}
        obj["status"] = {k: v for k, v in merged.items() if v is not None}
        return obj

    def patch_metadata(self, *_: Any, **__: Any) -> Any:
        self.finalizer_patches += 1
        raise AssertionError("no finalizer without a run in flight")

    def event(self, body: Any, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(reason)


def test_without_a_pipelines_backend_a_dataset_says_so_and_holds_nothing() -> None:
    body = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "digits", "namespace": "ml", "uid": OWNER.uid, "generation": 1},
        "spec": {"source": "builtin://digits"},
    }
    cluster = Recorder(body)
    ctx = Context(cluster, OperatorConfig(pipelines="none"))  # type: ignore[arg-type]
    result = dataset.reconcile(ctx, body)
    assert result.permanent is None and type(result).__name__ == "Result"
    status = body["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "NoPipelinesBackend" and "pipelines: none" in degraded["message"]
    assert status["phase"] == "Failed" and status["ingestion"]["state"] == "SKIPPED"
    assert cluster.finalizer_patches == 0 and cluster.events == ["NoPipelinesBackend"]
    # Nothing changes on the next pass: no run, no write, no event.
    before = dict(status)
    dataset.reconcile(ctx, body)
    assert body["status"] == before and cluster.events == ["NoPipelinesBackend"]
