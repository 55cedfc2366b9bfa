"""Tuning provider ``local``: the sweep's search with Optuna on this machine, trials as processes.

Each experiment has a folder ``<store>/sweeps/<experiment>/``:

* ``sweep.json``: the request (search space, objective, algorithm, the trainer's arguments with
  storage URIs already mapped to this machine's paths), written once: the name is a hash of it;
* ``counts.json``: the three trial counts, rewritten when the sweep's counts change (the only
  change a running experiment takes, as in Katib);
* ``study.db``: the Optuna study (SQLite through Optuna's RDB storage);
* ``progress.json``: what the runner reports (phase, Katib's reason, every trial);
* ``stopped``: present once the sweep moved on to another experiment or was deleted.

The loop runs in a detached ``sweeprunner`` process (see its docstring for why and how), a local
run named ``<experiment>-runner-<attempt>``; trials are local runs named ``<experiment>-NNN``.
``start`` launches the runner once; when a runner died without finishing (killed, a reboot) it
launches another attempt, up to ``RUNNER_ATTEMPTS``, which resumes the stored study. A runner
that finished because ``maxTrialCount`` trials were done resumes too when the count is raised.
Nothing is rendered (``kind == "None"``); ``observe`` reads ``progress.json``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from slipway.builders.meta import Owner
from slipway.config import OperatorConfig

from .localruns import CANCELED, FAILED, SUCCEEDED, LocalRuns, RunRecord
from .storage import LocalStore
from .tuning import (
    CREATED,
    EARLY_STOPPED,
    EXPERIMENT_FAILED,
    KILLED,
    MAX_TRIALS_REACHED,
    METRICS_UNAVAILABLE,
    PENDING,
    RUNNING,
    RUNNING_REASON,
    SweepRequest,
    SweepState,
    TrialCounts,
    TrialResult,
)
from .tuning import FAILED as T_FAILED
from .tuning import SUCCEEDED as T_SUCCEEDED

RUNNER_ATTEMPTS = 3
_ENDED = (SUCCEEDED, FAILED, CANCELED)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def _counts(trials: list[TrialResult]) -> TrialCounts:
    by = Counter(t.state for t in trials)
    return TrialCounts(
        total=len(trials),
        pending=by[PENDING],
        running=by[RUNNING],
        succeeded=by[T_SUCCEEDED],
        failed=by[T_FAILED],
        killed=by[KILLED],
        early_stopped=by[EARLY_STOPPED],
        metrics_unavailable=by[METRICS_UNAVAILABLE],
    )


def _trial(entry: dict[str, Any]) -> TrialResult:
    metrics = {
        str(k): float(v)
        for k, v in (entry.get("metrics") or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    objective = entry.get("objective")
    return TrialResult(
        str(entry["name"]),
        str(entry.get("state") or PENDING),
        {str(k): str(v) for k, v in (entry.get("parameters") or {}).items()},
        float(objective) if isinstance(objective, int | float) else None,
        metrics,
    )


class LocalTuning:
    """The ``local`` tuning provider."""

    api_version = "v1"
    kind = "None"

    def __init__(
        self, store: LocalStore, python: str | None = None, poll_seconds: float = 1.0
    ) -> None:
        self.store = store
        self.python = python
        self.poll_seconds = poll_seconds  # how often the runner looks at its trials
        self.runs = LocalRuns(store.runs)

    @classmethod
    def from_config(cls, config: OperatorConfig) -> LocalTuning:
        return cls(LocalStore.configured(config.local_store), config.trainer_python)

    def folder(self, name: str) -> Path:
        return self.store.root / "sweeps" / self.runs.folder(name).name

    def render(self, owner: Owner, request: SweepRequest) -> dict[str, Any] | None:
        return None

    def trials_of(self, request: SweepRequest) -> tuple[str, str, str] | None:
        return None

    def _arg(self, arg: str) -> str:
        if arg.startswith("--") and "=" in arg:
            option, value = arg.split("=", 1)
            return f"{option}={self._arg(value)}"
        return self.store.for_trainer(arg) if arg.startswith(("pvc://", "file://")) else arg

    def _attempts(self, name: str) -> list[RunRecord]:
        found: list[RunRecord] = []
        while (record := self.runs.read(f"{name}-runner-{len(found) + 1}")) is not None:
            found.append(record)
        return found

    def start(self, owner: Owner, request: SweepRequest) -> None:
        folder = self.folder(request.name)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "sweep.json").exists():
            sweep = {
                "name": request.name,
                "namespace": request.namespace,
                "sweep": owner.name,
                "uid": owner.uid,
                "objective": request.objective.to_api(),
                "algorithm": request.algorithm.to_api(),
                "earlyStopping": request.early_stopping.to_api()
                if request.early_stopping
                else None,
                "parameters": [p.to_api() for p in request.parameters],
                "args": [self._arg(a) for a in request.args],
                "options": request.options,
                "outputRoot": self.store.for_trainer(request.output_root),
                "workers": request.workers,
                "python": self.python,
                "store": str(self.store.root),
                "pollSeconds": self.poll_seconds,
            }
            write_json(folder / "sweep.json", sweep)
        counts = {
            "parallel": request.parallel,
            "maxTrials": request.max_trials,
            "maxFailed": request.max_failed,
        }
        if read_json(folder / "counts.json") != counts:
            write_json(folder / "counts.json", counts)
        if (folder / "stopped").exists():
            return
        attempts = self._attempts(request.name)
        if attempts and attempts[-1].state not in _ENDED:
            return  # running (or starting)
        progress = read_json(folder / "progress.json") or {}
        failures = sum(1 for a in attempts if a.state != SUCCEEDED)
        finished = sum(1 for t in progress.get("trials") or [] if t.get("state") != RUNNING)
        again = (
            not attempts
            or (attempts[-1].state != SUCCEEDED and failures < RUNNER_ATTEMPTS)
            or (progress.get("reason") == MAX_TRIALS_REACHED and request.max_trials > finished)
        )
        if not again:
            return
        self.runs.launch(
            f"{request.name}-runner-{len(attempts) + 1}",
            [sys.executable, "-m", "slipway.backends.sweeprunner", str(folder)],
            info={"namespace": request.namespace, "sweep": owner.name, "uid": owner.uid},
        )

    def observe(
        self, request: SweepRequest, live: dict[str, Any] | None, trials: list[dict[str, Any]]
    ) -> SweepState:
        folder = self.folder(request.name)
        progress = read_json(folder / "progress.json") or {}
        results = tuple(_trial(e) for e in progress.get("trials") or [] if e.get("name"))
        attempts = self._attempts(request.name)
        phase = str(progress.get("phase") or PENDING)
        reason = str(progress.get("reason") or CREATED)
        message = str(progress.get("message") or "")
        running = bool(attempts) and attempts[-1].state not in _ENDED
        if not attempts:
            phase, reason, message = PENDING, CREATED, "the local study has not started yet"
        elif running and phase in (T_SUCCEEDED, T_FAILED):
            phase, reason, message = RUNNING, RUNNING_REASON, "the study resumes"
        elif not running and phase not in (T_SUCCEEDED, T_FAILED):
            failures = sum(1 for a in attempts if a.state != SUCCEEDED)
            last = attempts[-1]
            if failures >= RUNNER_ATTEMPTS:
                phase, reason = T_FAILED, EXPERIMENT_FAILED
                message = f"the sweep runner failed {failures} times; last: {last.message}"
            else:
                phase, reason = RUNNING, RUNNING_REASON
                message = f"the sweep runner ended ({last.message or last.state}); resuming"
        return SweepState(
            phase,
            reason,
            message,
            _counts(list(results)),
            results,
            None,
            started=progress.get("started") or (attempts[0].created if attempts else None),
            finished=progress.get("finished") if phase in (T_SUCCEEDED, T_FAILED) else None,
        )

    def stop(self, owner: Owner, keep: set[str]) -> list[str]:
        stopped = []
        root = self.store.root / "sweeps"
        for sweep_file in sorted(root.glob("*/sweep.json")) if root.is_dir() else []:
            sweep = read_json(sweep_file) or {}
            name = str(sweep.get("name") or "")
            folder = sweep_file.parent
            if sweep.get("uid") != owner.uid or name in keep or (folder / "stopped").exists():
                continue
            (folder / "stopped").touch()
            for attempt in self._attempts(name):
                self.runs.cancel(attempt.name)
            for trial in sorted(self.store.runs.glob(f"{name}-[0-9][0-9][0-9]*")):
                self.runs.cancel(trial.name)  # a no-op for a trial that ended
            stopped.append(name)
        return stopped
