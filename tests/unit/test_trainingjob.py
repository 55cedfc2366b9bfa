"""What a TrainingJob's run is made of and what it left, without an API server: the fingerprint,
the pipeline's parameters, the distributed trainer's arguments, the outputs and the quality gate;
the shared run helpers (poll delay, status patches, storage mapping); and the requeue loop."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from slipway.api.v1alpha1.trainingjob import TrainingJobSpec
from slipway.backends.pipelines import TRAINING
from slipway.backends.storage import LocalStore
from slipway.builders.meta import Owner
from slipway.config import OperatorConfig
from slipway.handlers.requeue import Requeue
from slipway.reconcilers import runs, trainingjob, trainingplan
from slipway.reconcilers.base import Context, clear_removed, compact
from slipway.reconcilers.trainingplan import DatasetVersion

from .test_dataset import Recorder

OWNER = Owner("slipway.dev/v1alpha1", "TrainingJob", "mlp", "ml", "7d2e4f1a-0000-4b1c-9d3e-1b2c")
DATA = DatasetVersion("digits", "v1", "sha256:" + "d" * 64, "pvc://slipway-datasets/ml/digits/g1")


def spec(**fields: Any) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(
        {"dataset": {"name": "digits", "version": "v1"}, **fields}
    )


def test_fingerprint_covers_what_shapes_the_weights_and_nothing_else() -> None:
    base = trainingplan.fingerprint(spec(), DATA.digest, "image:t:1")
    assert base.startswith("sha256:") and len(base) == 71
    assert trainingplan.fingerprint(spec(), DATA.digest, "image:t:1") == base
    assert (
        trainingplan.fingerprint(spec(qualityGate={"minimum": 0.9}), DATA.digest, "image:t:1")
        == base
    )
    assert trainingplan.fingerprint(spec(reuse="Never"), DATA.digest, "image:t:1") == base
    changed = [
        trainingplan.fingerprint(spec(trainer={"epochs": 11}), DATA.digest, "image:t:1"),
        trainingplan.fingerprint(spec(trainer={"seed": 1}), DATA.digest, "image:t:1"),
        trainingplan.fingerprint(spec(workers=2), DATA.digest, "image:t:1"),
        trainingplan.fingerprint(spec(), "sha256:" + "e" * 64, "image:t:1"),
        trainingplan.fingerprint(spec(), DATA.digest, "image:t:2"),
        trainingplan.fingerprint(
            spec(trainer={"hyperparameters": {"hidden": "32"}}), DATA.digest, "image:t:1"
        ),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_trainer_code_is_the_checkout_sources_for_local_runs() -> None:
    local = trainingplan.trainer_code("ghcr.io/x/trainer:1", local=True)
    assert local.startswith("sha256:") and local == trainingplan.trainer_code("other", True)
    assert (
        trainingplan.trainer_code("ghcr.io/x/trainer:1", local=False) == "image:ghcr.io/x/trainer:1"
    )


def test_one_worker_without_gpus_is_the_pipeline(config: OperatorConfig) -> None:
    assert not trainingplan.distributed(spec())
    assert trainingplan.distributed(spec(workers=2))
    assert trainingplan.distributed(spec(placement={"nodePool": "gpu", "gpus": 1}))
    job = spec(
        trainer={"epochs": 3, "hyperparameters": {"hidden": "32"}},
        qualityGate={"metric": "macroRecall", "minimum": 0.8},
        placement={"nodePool": "gpu"},
    )
    pool = config.pool("gpu")
    run = trainingplan.pipeline_run(OWNER, "mlp-g1-7d2e4f1a", job, DATA, pool)
    assert run.pipeline == TRAINING and run.name == "mlp-g1-7d2e4f1a"
    params = run.parameters
    assert params["dataset_uri"] == DATA.uri and params["dataset_digest"] == DATA.digest
    assert params["output_uri"] == "pvc://slipway-models/ml/mlp-g1-7d2e4f1a"
    assert params["hyperparameters_json"] == '{"hidden": "32"}' and params["epochs"] == 3
    assert params["gate_metric"] == "macroRecall" and params["min_value"] == 0.8
    assert params["node_selector"] == {"slipway.dev/pool": "gpu"} and params["gpus"] == 0
    assert params["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_distributed_arguments_as_pods_and_as_local_processes(config: OperatorConfig) -> None:
    job = spec(workers=2, trainer={"hyperparameters": {"hidden": "64,32"}})
    in_pods = trainingplan.training_request(OWNER, "mlp-g1-7d2e4f1a", job, DATA, None, True)
    assert in_pods.args[:3] == [
        "--dataset-uri=/mnt/pvc/slipway-datasets/ml/digits/g1",
        f"--dataset-digest={DATA.digest}",
        "--output-uri=/mnt/pvc/slipway-models/ml/mlp-g1-7d2e4f1a",
    ]
    assert in_pods.args[-1] == "--hparam=hidden=64,32" and in_pods.workers == 2
    assert {v["persistentVolumeClaim"]["claimName"] for v in in_pods.volumes} == {
        "slipway-datasets",
        "slipway-models",
    }
    assert in_pods.resources["requests"] == {"cpu": "100m", "memory": "256Mi"}
    local = trainingplan.training_request(OWNER, "mlp-g1-7d2e4f1a", job, DATA, None, False)
    assert local.args[0] == f"--dataset-uri={DATA.uri}" and not local.volumes


def write_outputs(folder: Path, accuracy: float) -> None:
    folder.mkdir(parents=True)
    epochs = [
        {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4},
        {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": accuracy},
    ]
    (folder / "metrics.json").write_text(json.dumps({"epochs": epochs}))
    meta = {
        "fingerprint": "sha256:" + "f" * 64,
        "model": {"file": "model.onnx", "sha256": "a" * 64},
        "metrics": {"validation": {"accuracy": accuracy, "loss": 0.6, "perClass": {}}},
    }
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_outputs_history_and_gate(tmp_path: Path) -> None:
    store = runs.Store(LocalStore(tmp_path))
    output = "pvc://slipway-models/ml/mlp-g1-7d2e4f1a"
    assert trainingplan.outputs(store, output) is None  # metadata.json absent: not done
    write_outputs(tmp_path / "pvc/slipway-models/ml/mlp-g1-7d2e4f1a", 0.91)
    found = trainingplan.outputs(store, output)
    assert found is not None
    assert found.model == {
        "uri": f"{output}/model.onnx",
        "digest": "sha256:" + "a" * 64,
        "fingerprint": "sha256:" + "f" * 64,
    }
    assert found.metrics == {"accuracy": 0.91, "loss": 0.6}
    assert trainingplan.history(store, output) == [
        {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "valLoss": 1.1, "valAccuracy": 0.4},
        {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "valLoss": 0.6, "valAccuracy": 0.91},
    ]
    assert trainingplan.gate_failure(spec(qualityGate={"minimum": 0.9}), found.metrics) is None
    failure = trainingplan.gate_failure(spec(qualityGate={"minimum": 0.95}), found.metrics)
    assert failure is not None and "accuracy 0.9100 is below the minimum 0.95" in failure
    missing = trainingplan.gate_failure(spec(qualityGate={"metric": "macroRecall"}), found.metrics)
    assert missing is not None and "no macroRecall" in missing


def test_poll_delay_grows_with_the_run_age() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert runs.poll_delay(None, now) == runs.MIN_POLL_S
    assert runs.poll_delay("2026-01-01T11:59:55Z", now) == runs.MIN_POLL_S
    assert runs.poll_delay("2026-01-01T11:59:00Z", now) == 6.0
    assert runs.poll_delay("2026-01-01T10:00:00Z", now) == runs.MAX_POLL_S


def test_status_patches_clear_dropped_nested_keys() -> None:
    old = {"outcome": "NewVersion", "name": "a", "nested": {"x": 1, "y": 2}}
    new = compact({"name": "b", "message": None, "nested": {"x": 1}})
    assert clear_removed(old, new) == {
        "name": "b",
        "nested": {"x": 1, "y": None},
        "outcome": None,
    }
    same = {"name": "a"}
    assert clear_removed(same, compact({"name": "a", "gone": None})) == same


def test_messages_lose_terminal_colours() -> None:
    assert runs.plain("\x1b[91mFAILURE\x1b[0m: x") == "FAILURE: x"
    assert runs.plain("") is None and len(runs.plain("y" * 5000) or "") == runs.MESSAGE_LIMIT


def test_store_maps_uris_where_the_operator_can_read_them(tmp_path: Path) -> None:
    local = runs.Store(LocalStore(tmp_path))
    assert local.path("pvc://models/a/b") == tmp_path / "pvc/models/a/b"
    in_pod = runs.Store()
    assert in_pod.path("pvc://models/a/b") == Path("/mnt/pvc/models/a/b")
    assert in_pod.path("file:///data/x") == Path("/data/x")
    assert in_pod.path("s3://bucket/x") is None and in_pod.read_json("s3://bucket/x") is None
    assert in_pod.path("pvc://models/../etc") is None


def test_terminal_states_of_both_vocabularies() -> None:
    for state in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED", "Succeeded", "Failed"):
        assert runs.terminal(state)
    for state in ("PENDING", "RUNNING", "CANCELING", "Pending", "Running", None):
        assert not runs.terminal(state)


def ref(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ml", "name": name, "uid": f"uid-{name}"}}


def test_requeue_runs_due_objects_in_order_keeping_the_earlier_time() -> None:
    queue = Requeue()
    seen: list[str] = []
    done = threading.Event()

    def action(obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        if len(seen) == 2:
            done.set()

    queue.on("TrainingJob", action)
    queue.after("TrainingJob", ref("late"), 0.3)
    queue.after("TrainingJob", ref("soon"), 0.05)
    queue.after("TrainingJob", ref("soon"), 5.0)  # later than the entry it has: ignored
    assert queue.pending() == 2
    thread = threading.Thread(target=queue.run, daemon=True)
    thread.start()
    try:
        assert done.wait(5)
        assert seen == ["soon", "late"] and queue.pending() == 0
    finally:
        queue.stop()
        thread.join(2)
    assert not thread.is_alive()


def test_requeue_retries_a_failed_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("slipway.handlers.requeue.RETRY_S", 0.05)
    queue = Requeue()
    calls: list[float] = []

    def flaky(obj: dict[str, Any]) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("API server unavailable")

    queue.on("Dataset", flaky)
    queue.after("Dataset", ref("digits"), 0)
    thread = threading.Thread(target=queue.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == 2
    finally:
        queue.stop()
        thread.join(2)


@pytest.mark.parametrize(
    ("workers", "reason"), [(1, "NoPipelinesBackend"), (2, "NoTrainingBackend")]
)
def test_without_a_backend_a_training_job_fails_saying_so(workers: int, reason: str) -> None:
    digits = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "digits", "namespace": "ml", "uid": "d", "generation": 1},
        "status": {"versions": [{"version": "v1", "digest": DATA.digest, "uri": DATA.uri}]},
    }
    body = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "mlp", "namespace": "ml", "uid": OWNER.uid, "generation": 1},
        "spec": {"dataset": {"name": "digits", "version": "v1"}, "workers": workers},
    }
    cluster = Recorder(digits, body)
    config = OperatorConfig(pipelines="none", training="none")
    ctx = Context(cluster, config)  # type: ignore[arg-type]
    assert trainingjob.reconcile(ctx, body).permanent is None
    status = body["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert status["phase"] == "Failed" and degraded["reason"] == reason
    assert "none" in degraded["message"] and "model" not in status
    assert status["lineage"]["datasetDigest"] == DATA.digest
    assert cluster.finalizer_patches == 0
    before = dict(status)
    trainingjob.reconcile(ctx, body)  # settled: nothing read again, nothing written
    assert body["status"] == before
