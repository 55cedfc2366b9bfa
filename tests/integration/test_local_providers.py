"""The local providers really running: kfp.local pipelines and torchrun, as detached processes.

Nothing here is played: the ingestion pipeline snapshots ``builtin://digits`` into a temporary
local store, the training provider trains on it with two torchrun workers (gloo on CPU) and exports
ONNX, and the outputs are checked against the files. A "restarted operator" (a new provider
instance over the same store) finds each run and starts nothing; a run whose processes die without
an outcome is FAILED and never started again; a canceled run's process group is gone.

Environments: the pipelines provider resolves its interpreter itself through ``hack/venv.sh``
(the environment ``pipelines/test.sh`` uses: created on first use, which installs torch and takes
minutes). The training provider is given that same interpreter (``trainerPython``): it holds the
trainer's requirements, so the test does not install torch a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from slipway.backends.localpipelines import PIPELINES_VENV, LocalPipelines
from slipway.backends.localruns import LocalRuns
from slipway.backends.localtraining import LocalTraining
from slipway.backends.pipelines import (
    CANCELED,
    FAILED,
    INGESTION,
    SUCCEEDED,
    PipelineRun,
    RunStatus,
)
from slipway.backends.storage import LocalStore
from slipway.backends.training import FAILED as TRAINING_FAILED
from slipway.backends.training import RUNNING as TRAINING_RUNNING
from slipway.backends.training import SUCCEEDED as TRAINING_SUCCEEDED
from slipway.backends.training import TrainingRequest, TrainingState

from .conftest import ROOT

RULES = {"minRows": 1000, "allowedLabels": list(range(10)), "minClassFraction": 0.05}


@pytest.fixture(scope="module")
def python() -> str:
    """The pipelines environment (hack/venv.sh creates it on first use)."""
    out = subprocess.run(
        [str(ROOT / "hack" / "venv.sh"), PIPELINES_VENV.name, *PIPELINES_VENV.requirements],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return str(Path(out.stdout.strip()) / "bin" / "python")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(tmp_path_factory.mktemp("local-store"))


def wait(read: Callable[[], RunStatus | TrainingState | None], timeout: float = 600) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read()
        if state is not None and state.terminal:
            return state
        time.sleep(1)
    raise AssertionError(f"still not finished after {timeout:.0f} s: {read()!r}")


def starts_logged(store: LocalStore, name: str) -> int:
    return (store.runs / name / "log").read_text().count(f"[slipway] run {name} started")


@dataclass(frozen=True)
class Snapshot:
    uri: str
    digest: str


@pytest.fixture(scope="module")
def digits(python: str, store: LocalStore) -> Snapshot:
    run = PipelineRun(
        "digits-g1-0123abcd",
        "ml",
        INGESTION,
        {
            "source_uri": "builtin://digits",
            "store_uri": "pvc://datasets",
            "name": "digits",
            "version": "v1",
            "rules_json": json.dumps(RULES),
        },
    )
    backend = LocalPipelines(store)  # no interpreter configured: hack/venv.sh's
    started = backend.start(run)
    assert started.run_id == run.name and not started.terminal
    done = wait(lambda: backend.status(started.run_id))
    assert isinstance(done, RunStatus)
    assert done.state == SUCCEEDED, (store.runs / run.name / "log").read_text()[-3000:]
    digest = done.outputs["Output"]
    assert isinstance(digest, str) and digest.startswith("sha256:")

    # A restarted operator finds the same finished run and starts nothing.
    again = LocalPipelines(store)
    assert again.find(run) == done
    assert again.start(run) == done
    assert starts_logged(store, run.name) == 1
    return Snapshot("pvc://datasets/digits/v1", digest)


def test_ingestion_pipeline_publishes_the_snapshot(store: LocalStore, digits: Snapshot) -> None:
    folder = store.local_path(digits.uri)
    assert folder is not None
    manifest = (folder / "manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digits.digest
    assert json.loads(manifest)["rows"] == 1797
    assert json.loads((folder / "validation.json").read_text())["ok"] is True


def test_a_failed_rule_fails_the_run_with_the_rule(store: LocalStore, digits: Snapshot) -> None:
    run = PipelineRun(
        "digits-g2-0123abcd",
        "ml",
        INGESTION,
        {
            "source_uri": "builtin://digits",
            "store_uri": "pvc://datasets",
            "name": "digits",
            "version": "v2",
            "rules_json": json.dumps({"minRows": 5000}),
        },
    )
    backend = LocalPipelines(store)
    run_id = backend.start(run).run_id
    done = wait(lambda: backend.status(run_id))
    assert isinstance(done, RunStatus) and done.state == FAILED
    assert "validate-dataset" in done.message and "minRows" in done.message, done.message
    assert "need at least 5000" in done.message and "\x1b" not in done.message, done.message
    assert not (store.root / "pvc" / "datasets" / "digits" / "v2").exists()


def training(name: str, snapshot: Snapshot, epochs: int) -> TrainingRequest:
    return TrainingRequest(
        name=name,
        namespace="ml",
        image="unused-locally",
        args=[
            f"--dataset-uri={snapshot.uri}",
            f"--dataset-digest={snapshot.digest}",
            f"--output-uri=pvc://models/{name}",
            f"--epochs={epochs}",
            "--num-threads=1",
        ],
        workers=2,
    )


def test_torchrun_trains_with_two_workers_and_a_restart_starts_nothing(
    python: str, store: LocalStore, digits: Snapshot
) -> None:
    request = training("digits-ddp-g1-0123abcd", digits, epochs=2)
    backend = LocalTraining(store, python=python)
    backend.start(request)
    assert backend.observe(request, None).phase in (TRAINING_RUNNING, TRAINING_SUCCEEDED)
    done = wait(lambda: backend.observe(request, None))
    log = (store.runs / request.name / "log").read_text()
    assert isinstance(done, TrainingState) and done.phase == TRAINING_SUCCEEDED, log[-3000:]

    out = store.root / "pvc" / "models" / request.name
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["model"]["sha256"] == hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    assert meta["dataset"]["digest"] == digits.digest
    assert meta["training"]["worldSize"] == 2 and meta["training"]["epochs"] == 2
    assert log.count("epoch=2 ") >= 1

    restarted = LocalTraining(store, python=python)
    spec_written = (store.runs / request.name / "spec.json").stat().st_mtime_ns
    restarted.start(request)
    assert restarted.observe(request, None) == done
    assert (store.runs / request.name / "spec.json").stat().st_mtime_ns == spec_written
    assert starts_logged(store, request.name) == 1


def _pid(store: LocalStore, name: str) -> int:
    return int(json.loads((store.runs / name / "pid").read_text())["pid"])


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cancel_stops_the_process_group(python: str, store: LocalStore, digits: Snapshot) -> None:
    request = training("digits-ddp-g2-0123abcd", digits, epochs=5000)
    backend = LocalTraining(store, python=python)
    backend.start(request)
    assert backend.observe(request, None).phase == TRAINING_RUNNING
    pgid = _pid(store, request.name)
    time.sleep(3)
    backend.cancel(request)
    state = backend.observe(request, None)
    assert (state.phase, state.message) == (TRAINING_FAILED, "local run canceled")
    assert LocalRuns(store.runs).read(request.name).state == CANCELED  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while not _group_gone(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_gone(pgid)


def test_a_run_that_died_without_an_outcome_is_failed_and_not_restarted(
    python: str, store: LocalStore, digits: Snapshot
) -> None:
    request = training("digits-ddp-g3-0123abcd", digits, epochs=5000)
    backend = LocalTraining(store, python=python)
    backend.start(request)
    pgid = _pid(store, request.name)
    time.sleep(2)
    os.killpg(pgid, signal.SIGKILL)  # as if the machine went down mid-run
    deadline = time.monotonic() + 10
    while not _group_gone(pgid) and time.monotonic() < deadline:
        backend.observe(request, None)  # reaps the supervisor (the test process is its parent)
        time.sleep(0.2)
    restarted = LocalTraining(store, python=python)
    state = restarted.observe(request, None)
    assert state.phase == TRAINING_FAILED
    assert "ended without recording an outcome" in state.message
    restarted.start(request)
    assert restarted.observe(request, None) == state
    assert starts_logged(store, request.name) == 1
