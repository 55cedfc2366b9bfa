"""The local tuning provider with a stand-in trainer: the real sweep runner process, real Optuna
(SQLite study), real detached local runs; only the trainer is a small script that writes what the
real one writes (one JSON line per epoch in --metrics-file, then model.onnx and metadata.json) with
a validation accuracy that peaks at learning rate 0.01. The real trainer runs in
tests/integration/test_tuningsweep_local.py.

Each test checks Katib's rules on the outcome: the trial budget, parallelTrialCount (from the
stand-in's own record of when each trial ran), early stopping, the goal, the failure budget, and a
runner killed mid-sweep whose successor resumes the stored study without running a trial twice.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.backends.localtuning import LocalTuning
from slipway.backends.storage import LocalStore
from slipway.backends.tuning import (
    EXPERIMENT_FAILED,
    FAILED,
    GOAL_REACHED,
    MAX_TRIALS_REACHED,
    SUCCEEDED,
    SweepState,
)
from slipway.reconcilers.sweepplan import request

from .test_tuning_katib import DATA, OWNER, SPEC
from .test_tuning_plan import spec

TRAINER = textwrap.dedent(
    """\
    #!{python}
    import json, math, os, signal, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    lr = float(args["learning-rate"])
    epochs = int(args["epochs"])
    ledger = os.environ["FAKE_LEDGER"]
    out = args["output-uri"]
    def record(**entry):
        with open(ledger, "a") as f:
            f.write(json.dumps({{"out": out, **entry}}) + "\\n")
    def stopped(*_):
        record(end=time.time(), stopped=True)
        sys.exit(143)
    signal.signal(signal.SIGTERM, stopped)
    record(start=time.time())
    if lr > float(os.environ.get("FAKE_FAIL_ABOVE", "1e9")):
        print("error: loss is not finite", flush=True)
        sys.exit(1)
    quality = max(0.05, 1.0 - 0.3 * abs(math.log10(lr) + 2.0))
    for epoch in range(1, epochs + 1):
        time.sleep(float(os.environ.get("FAKE_EPOCH_S", "0.15")))
        acc = quality * (0.8 + 0.2 * epoch / epochs)
        rec = {{"epoch": epoch, "val_accuracy": acc, "val_loss": 1 - acc}}
        with open(args["metrics-file"], "a") as f:
            f.write(json.dumps(rec) + "\\n")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "model.onnx"), "wb").write(b"model")
    meta = {{"model": {{"file": "model.onnx", "sha256": "0" * 64}}, "dataset": {{}}}}
    open(os.path.join(out, "metadata.json"), "w").write(json.dumps(meta))
    record(end=time.time())
    """
)
LEARNING_RATE = {
    "name": "learningRate",
    "parameterType": "double",
    "feasibleSpace": {"min": 0.0001, "max": 1.0, "distribution": "logUniform"},
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalTuning, Path]]:
    trainer = tmp_path / "fake-python"
    trainer.write_text(TRAINER.format(python=sys.executable))
    trainer.chmod(0o755)
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))
    tuning = LocalTuning(LocalStore(tmp_path / "store"), python=str(trainer), poll_seconds=0.1)
    yield tuning, ledger
    tuning.stop(OWNER, set())


def sweep(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "parameters": [LEARNING_RATE],
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": "3"}],
        },
        "objective": {"type": "maximize", "objectiveMetricName": "val_accuracy"},
        "earlyStopping": None,
        "trialTemplate": {
            "spec": {"dataset": {"name": "digits", "version": "v1"}, "trainer": {"epochs": 3}}
        },
        **changes,
    }
    s = spec(**base)
    return request(OWNER, f"digits-{abs(hash(json.dumps(base))) % 10**6}", s, DATA, None, False)


def run_to_end(tuning: LocalTuning, req: Any, timeout: float = 90.0) -> SweepState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tuning.start(OWNER, req)
        state = tuning.observe(req, None, [])
        if state.terminal:
            return state
        time.sleep(0.2)
    log = (tuning.store.runs / f"{req.name}-runner-1" / "log").read_text()
    raise AssertionError(f"the sweep did not end: {state}\n{log[-3000:]}")


def concurrency(ledger: Path, runs: Path) -> int:
    """The most trials that ran at once, by the stand-in's record; a trial killed before it could
    record its end ended when its run recorded its final state."""
    events = []
    ended = set()
    for line in ledger.read_text().splitlines():
        entry = json.loads(line)
        events.append((entry.get("start") or entry.get("end"), 1 if "start" in entry else -1))
        if "end" in entry:
            ended.add(entry["out"])
    for line in ledger.read_text().splitlines():
        out = json.loads(line)["out"]
        if out not in ended:
            ended.add(out)
            events.append(((runs / Path(out).name / "state.json").stat().st_mtime, -1))
    running = peak = 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    return peak


def test_budget_parallelism_and_early_stopping(env: tuple[LocalTuning, Path]) -> None:
    tuning, ledger = env
    req = sweep(
        maxTrialCount=8,
        parallelTrialCount=2,
        earlyStopping={
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "1"},
                {"name": "start_step", "value": "1"},
            ],
        },
    )
    state = run_to_end(tuning, req)
    assert (state.phase, state.reason) == (SUCCEEDED, MAX_TRIALS_REACHED), state
    assert state.counts.total == 8
    assert state.counts.succeeded + state.counts.early_stopped == 8
    assert state.counts.early_stopped >= 1
    assert 1 <= concurrency(ledger, tuning.store.runs) <= 2
    best = max((t for t in state.trials if t.state == SUCCEEDED), key=lambda t: t.objective or 0)
    assert best.metrics["val_accuracy"] == best.objective
    assert set(best.parameters) == {"learningRate"}
    folder = tuning.store.runs
    assert len(list(folder.glob(f"{req.name}-[0-9][0-9][0-9]"))) == 8


def test_the_goal_ends_the_sweep(env: tuple[LocalTuning, Path]) -> None:
    tuning, _ = env
    req = sweep(
        maxTrialCount=30,
        parallelTrialCount=1,
        objective={"type": "maximize", "objectiveMetricName": "val_accuracy", "goal": 0.6},
    )
    state = run_to_end(tuning, req)
    assert (state.phase, state.reason) == (SUCCEEDED, GOAL_REACHED), state
    assert state.counts.total < 30
    assert max(t.objective or 0 for t in state.trials) >= 0.6


def test_failed_trials_fail_the_sweep_at_the_budget(
    env: tuple[LocalTuning, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tuning, _ = env
    monkeypatch.setenv("FAKE_FAIL_ABOVE", "0.0")  # every trial fails
    req = sweep(maxTrialCount=6, parallelTrialCount=1, maxFailedTrialCount=2)
    state = run_to_end(tuning, req)
    assert (state.phase, state.reason) == (FAILED, EXPERIMENT_FAILED), state
    assert state.counts.failed == 2


def test_a_killed_runner_is_resumed_without_running_a_trial_twice(
    env: tuple[LocalTuning, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tuning, ledger = env
    monkeypatch.setenv("FAKE_EPOCH_S", "0.4")
    req = sweep(maxTrialCount=5, parallelTrialCount=2)
    tuning.start(OWNER, req)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = tuning.observe(req, None, [])
        if state.counts.succeeded >= 1 and state.counts.running >= 1:
            break
        time.sleep(0.1)
    runner = tuning.runs.folder(f"{req.name}-runner-1")
    pid = json.loads((runner / "pid").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # the runner and its supervisor; the trials run on
    state = run_to_end(tuning, req)
    assert (state.phase, state.reason) == (SUCCEEDED, MAX_TRIALS_REACHED), state
    assert (tuning.store.runs / f"{req.name}-runner-2").is_dir()
    assert state.counts.total == state.counts.succeeded == 5
    starts = [json.loads(line)["out"] for line in ledger.read_text().splitlines()]
    started = [s for s in starts if starts.count(s) == 2]  # a start and an end line each
    assert len(set(started)) == 5 and len(starts) == 10
    drawn = [
        json.loads(p.read_text())["info"]["values"]["learningRate"]
        for p in tuning.store.runs.glob(f"{req.name}-[0-9][0-9][0-9]/spec.json")
    ]
    assert len(set(drawn)) == 5  # the resumed study draws new values, not its first ones again


def test_spec_args_reach_the_trainer(env: tuple[LocalTuning, Path]) -> None:
    tuning, _ = env
    req = sweep(maxTrialCount=1, parallelTrialCount=1)
    run_to_end(tuning, req)
    spec_json = json.loads((tuning.store.runs / f"{req.name}-000" / "spec.json").read_text())
    argv = spec_json["argv"]
    assert "--epochs=3" in argv and any(a.startswith("--learning-rate=") for a in argv)
    assert f"--dataset-uri={tuning.store.root}/pvc/slipway-datasets/digits/v1" in argv
    output = f"--output-uri={tuning.store.root}/pvc/slipway-models/team-a/{req.name}/{req.name}-000"
    assert output in argv
    assert SPEC["parallelTrialCount"] == 2  # the shared base spec is untouched
