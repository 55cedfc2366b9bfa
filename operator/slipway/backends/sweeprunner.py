"""The local sweep runner: one detached process per experiment that drives an Optuna study.

How the operator drives local trials without a per-object timer: it does not drive them at all.
``LocalTuning.start`` launches this module as a detached run of the local-runs machinery
(``localruns``: its own session, pid, log and final state, found again by name), in the operator's
interpreter (Optuna is an operator dependency). The runner owns the loop of the experiment and
every trial is itself a detached local run (``python -m slipway_trainer`` in the trainer's
environment), so neither an operator restart nor a runner restart stops a trial. The operator only
reads what the runner writes (``progress.json``) when it reconciles the sweep, which the requeue
loop does while the experiment is in flight.

Each second the runner:

1. reads each running trial's ``--metrics-file`` (one JSON line per epoch) from where it last
   stopped, reports the objective of each new epoch to Optuna (``trial.report``) and, with early
   stopping, cancels a trial the median pruner condemns (state PRUNED: Katib's EarlyStopped);
2. records each trial that ended: the last epoch's objective for a SUCCEEDED run (no objective:
   Katib's MetricsUnavailable, a failure), FAIL otherwise;
3. decides the experiment as Katib does, in Katib's order: goal reached, failed trials at
   ``maxFailedTrialCount``, ``maxTrialCount`` trials finished, the grid exhausted; running trials
   are then killed (Katib's Killed);
4. asks Optuna for new trials while fewer than ``parallelTrialCount`` run and fewer than
   ``maxTrialCount`` exist (the counts are re-read from ``counts.json``, which the operator
   rewrites when the sweep's counts change);
5. rewrites ``progress.json`` (atomically) when anything changed.

The study lives in an SQLite file (Optuna's RDB storage) beside ``progress.json``, so a runner
started again (after a crash or a reboot) loads it: finished trials stay finished, a trial whose
run still exists is followed again rather than started twice, and the search goes on from there.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from slipway.api.v1alpha1.tuningsweep import EarlyStopping, Objective, Parameter, SearchAlgorithm

from . import optunamap
from .localruns import CANCELED as RUN_CANCELED
from .localruns import FAILED as RUN_FAILED
from .localruns import SUCCEEDED as RUN_SUCCEEDED
from .localruns import LocalRuns, Venv, checkout
from .sweeptrial import Active
from .tuning import (
    EARLY_STOPPED,
    EXPERIMENT_FAILED,
    FAILED,
    GOAL_REACHED,
    KILLED,
    MAX_TRIALS_REACHED,
    METRICS_UNAVAILABLE,
    PENDING,
    RUNNING,
    RUNNING_REASON,
    SUCCEEDED,
    SUGGESTION_END_REACHED,
    goal_reached,
)

POLL_S = 1.0
TRAINER_VENV = Venv("trainer", ("images/trainer/requirements.txt",))
log = logging.getLogger("slipway.sweeprunner")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def trial_name(experiment: str, number: int) -> str:
    return f"{experiment}-{number:03d}"


class Runner:
    """One experiment's loop (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        sweep = read_json(folder / "sweep.json")
        if sweep is None:
            raise RuntimeError(f"{folder}/sweep.json is missing or unreadable")
        self.name = str(sweep["name"])
        self.objective = Objective.model_validate(sweep["objective"])
        self.algorithm = SearchAlgorithm.model_validate(sweep["algorithm"])
        stopping = sweep.get("earlyStopping")
        self.early = EarlyStopping.model_validate(stopping) if stopping else None
        self.parameters = [Parameter.model_validate(p) for p in sweep["parameters"]]
        self.args = [str(a) for a in sweep["args"]]
        self.options = {str(k): str(v) for k, v in sweep["options"].items()}
        self.output_root = str(sweep["outputRoot"]).rstrip("/")
        self.workers = int(sweep.get("workers") or 1)
        self.python: str | None = sweep.get("python")
        self.runs = LocalRuns(Path(sweep["store"]) / "runs")
        self.poll_s = float(sweep.get("pollSeconds") or POLL_S)
        self.metric = self.objective.objective_metric_name
        self.names = [self.metric, *(self.objective.additional_metric_names or [])]
        if self.algorithm.algorithm_name in optunamap.NEEDS_TRAINER_PACKAGES:
            self._borrow_trainer_packages()
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{folder / 'study.db'}", engine_kwargs={"connect_args": {"timeout": 60}}
        )
        self.sampler = optunamap.sampler(self.algorithm, self.parameters, self.name)
        self.study = optuna.create_study(
            storage=storage,
            study_name=self.name,
            direction="maximize" if self.objective.type == "maximize" else "minimize",
            sampler=self.sampler,
            pruner=optunamap.pruner(self.early),
            load_if_exists=True,
        )
        resumed_at = len(self.study.get_trials(deepcopy=False))
        if resumed_at:
            self.sampler = optunamap.sampler(self.algorithm, self.parameters, self.name, resumed_at)
            self.study.sampler = self.sampler
        self.active: dict[int, Active] = {}
        old = read_json(folder / "progress.json") or {}
        self.started = str(old.get("started") or now())
        self.written: dict[str, Any] = {}
        self.stopping = False

    # -- environment ------------------------------------------------------------------------------

    def trainer_python(self) -> str:
        """The trainer environment's interpreter (created with hack/venv.sh when none is set)."""
        if self.python:
            return self.python
        from .localruns import _resolve_python  # the supervisor's own resolution, lock included

        spec = {
            "argv": ["python"],
            "venv": {"name": TRAINER_VENV.name, "requirements": list(TRAINER_VENV.requirements)},
            "checkout": str(checkout() or ""),
        }
        return _resolve_python(spec)

    def _borrow_trainer_packages(self) -> None:
        """Optuna's GP and QMC samplers need torch and scipy, which the trainer's environment
        has and the operator's never installs: put its packages last on the path."""
        out = subprocess.run(
            [
                self.trainer_python(),
                "-c",
                "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); "
                "print(p['platlib'])",
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        for path in dict.fromkeys(out.stdout.split()):
            if path not in sys.path:
                sys.path.append(path)

    def counts(self) -> tuple[int, int, int | None]:
        data = read_json(self.folder / "counts.json") or {}
        parallel = int(data.get("parallel") or 1)
        max_trials = int(data.get("maxTrials") or 1)
        failed = data.get("maxFailed")
        return parallel, max_trials, int(failed) if failed is not None else None

    # -- trials ------------------------------------------------------------------------------------

    def resume(self) -> None:
        """Follow again the trials a previous runner left running (start those never launched)."""
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            name = trial_name(self.name, frozen.number)
            active = Active(trial, name, self.runs.folder(name) / "metrics.jsonl")
            active.records = {step: {} for step in frozen.intermediate_values}
            self.active[frozen.number] = active
            if self.runs.read(name) is None:
                values = {str(k): str(v) for k, v in frozen.user_attrs.get("values", {}).items()}
                self._launch(active, values)
            log.info("resumed trial %s", name)

    def _argv(self, values: dict[str, str], name: str) -> list[str]:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        parallel = max(1, self.counts()[0])
        searched = [self.options[n] + values[n] for n in self.options]
        args = [
            *self.args,
            *searched,
            f"--num-threads={max(1, cpus // parallel)}",
            f"--output-uri={self.output_root}/{name}",
            f"--metrics-file={self.runs.folder(name) / 'metrics.jsonl'}",
        ]
        python = self.python or "python"
        if self.workers > 1:
            head = [python, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
            return [*head, f"--nproc-per-node={self.workers}", "--module", "slipway_trainer", *args]
        return [python, "-m", "slipway_trainer", *args]

    def _launch(self, active: Active, values: dict[str, str]) -> None:
        root = checkout()
        env = {"PYTHONPATH": str(root / "images" / "trainer" / "src")} if root else {}
        self.runs.launch(
            active.name,
            self._argv(values, active.name),
            env=env,
            venv=None if self.python else TRAINER_VENV,
            info={"experiment": self.name, "trial": active.trial.number, "values": values},
        )

    def ask(self) -> None:
        trial = self.study.ask()
        values = {p.name: optunamap.suggest(trial, p) for p in self.parameters}
        trial.set_user_attr("values", values)
        name = trial_name(self.name, trial.number)
        active = Active(trial, name, self.runs.folder(name) / "metrics.jsonl")
        self.active[trial.number] = active
        self._launch(active, values)
        log.info("started trial %s with %s", active.name, values)

    def _end(self, number: int, state: TrialState, label: str, value: float | None = None) -> None:
        active = self.active.pop(number)
        active.trial.set_user_attr("metrics", active.last_metrics(self.names))
        active.trial.set_user_attr("state", label)
        if state == TrialState.COMPLETE:
            self.study.tell(active.trial, value)
        else:
            self.study.tell(active.trial, state=state)
        log.info("trial %s %s%s", active.name, label, f" ({self.metric} {value})" if value else "")

    def poll(self) -> None:
        for number, active in list(self.active.items()):
            pruned = False
            for record in active.new_records():
                epoch = int(record["epoch"])
                known = epoch in active.records
                active.records[epoch] = record
                value = record.get(self.metric)
                if known or not isinstance(value, int | float):
                    continue
                active.trial.report(float(value), epoch)
                if self.early is not None and active.trial.should_prune():
                    self.runs.cancel(active.name)
                    self._end(number, TrialState.PRUNED, EARLY_STOPPED)
                    pruned = True
                    break
            if pruned:
                continue
            run = self.runs.read(active.name)
            if run is None or run.state not in (RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELED):
                continue
            active.new_records()  # nothing after the end: read what is left
            final = active.last_metrics(self.names).get(self.metric)
            if run.state != RUN_SUCCEEDED:
                active.trial.set_user_attr("message", run.message[:500])
                self._end(number, TrialState.FAIL, FAILED)
            elif final is None:
                self._end(number, TrialState.FAIL, METRICS_UNAVAILABLE)
            else:
                self._end(number, TrialState.COMPLETE, SUCCEEDED, final)

    def kill_all(self) -> None:
        for number, active in list(self.active.items()):
            self.runs.cancel(active.name)
            self._end(number, TrialState.FAIL, KILLED)

    # -- the experiment ----------------------------------------------------------------------------

    def exhausted(self) -> bool:
        sampler = self.sampler
        return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(self.study)

    def judge(self, max_trials: int, max_failed: int | None) -> tuple[str, str, str] | None:
        trials = self.study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        best = self.study.best_value if done else None
        if goal_reached(self.objective, best):
            return SUCCEEDED, GOAL_REACHED, f"the best {self.metric} {best} reached the goal"
        failed = sum(
            1 for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("state") != KILLED
        )
        if max_failed is not None and failed and failed >= max_failed:
            return FAILED, EXPERIMENT_FAILED, f"{failed} trials failed (maxFailedTrialCount)"
        finished = [t for t in trials if t.state.is_finished()]
        if len(finished) >= max_trials:
            return SUCCEEDED, MAX_TRIALS_REACHED, f"{len(finished)} trials finished"
        if not self.active and self.exhausted():
            return SUCCEEDED, SUGGESTION_END_REACHED, "every value of the grid was tried"
        return None

    def report(self, phase: str, reason: str, message: str, finished: str | None = None) -> None:
        entries = []
        for t in self.study.get_trials(deepcopy=False):
            entries.append(self._entry(t))
        progress = {
            "phase": phase,
            "reason": reason,
            "message": message,
            "started": self.started,
            "finished": finished,
            "trials": entries,
        }
        if progress != self.written:
            write_json(self.folder / "progress.json", progress)
            self.written = progress

    def _entry(self, t: FrozenTrial) -> dict[str, Any]:
        labels = {
            TrialState.COMPLETE: SUCCEEDED,
            TrialState.PRUNED: EARLY_STOPPED,
            TrialState.RUNNING: RUNNING,
            TrialState.WAITING: PENDING,
        }
        state = labels.get(t.state) or str(t.user_attrs.get("state") or FAILED)
        active = self.active.get(t.number)
        metrics = active.last_metrics(self.names) if active else t.user_attrs.get("metrics") or {}
        entry: dict[str, Any] = {
            "name": trial_name(self.name, t.number),
            "state": state,
            "parameters": t.user_attrs.get("values") or {},
            "metrics": metrics,
            "objective": t.value if t.state == TrialState.COMPLETE else None,
        }
        if t.user_attrs.get("message"):
            entry["message"] = t.user_attrs["message"]
        return entry

    def run(self) -> int:
        self.resume()
        while True:
            parallel, max_trials, max_failed = self.counts()
            if self.stopping or (self.folder / "stopped").exists():
                self.kill_all()
                self.report(FAILED, "ExperimentStopped", "the sweep stopped this experiment", now())
                return 0
            self.poll()
            verdict = self.judge(max_trials, max_failed)
            if verdict is not None:
                self.kill_all()
                self.report(*verdict, finished=now())
                log.info("experiment %s: %s (%s)", self.name, verdict[1], verdict[2])
                return 0
            while (
                len(self.active) < parallel
                and len(self.study.get_trials(deepcopy=False)) < max_trials
                and not self.exhausted()
            ):
                self.ask()
            self.report(RUNNING, RUNNING_REASON, f"{len(self.active)} trials running")
            time.sleep(self.poll_s)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runner = Runner(Path(sys.argv[1]))

    def stop(*_: Any) -> None:
        runner.stopping = True

    signal.signal(signal.SIGTERM, stop)
    raise SystemExit(runner.run())


if __name__ == "__main__":
    main()
