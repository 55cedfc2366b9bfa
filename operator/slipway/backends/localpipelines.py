"""Pipelines provider ``local``: the same pipelines with ``kfp.local``, as detached child processes.

Each run is ``python -m slipway_pipelines.run_local`` in the pipelines environment (the trainer's
requirements plus kfp: ``pipelines/test.sh``'s), supervised by ``localruns`` in
``<store>/runs/<run name>/`` (spec, pid, log, result, final state). The run's name is its id, so
``status(run_id)`` and ``find(run)`` read the same folder. Storage URIs become paths of this
machine first (``storage.LocalStore``): ``pvc://<claim>/<path>`` is ``<store>/pvc/<claim>/<path>``.

The interpreter is ``pipelinesPython`` from the configuration, else the environment
``hack/venv.sh`` makes for the pipelines (created on first use by the run itself, so the operator
never blocks on an install). The trainer's and the pipelines' sources come from the checkout the
operator runs from, on ``PYTHONPATH``; kfp and torch never enter the operator's environment.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import JsonValue

from slipway.config import OperatorConfig

from .localruns import LocalRunError, LocalRuns, RunRecord, Venv, checkout
from .pipelines import PIPELINE_NAMES, PipelineRun, PipelinesError, RunStatus
from .storage import LocalStore, StorageError

PIPELINES_VENV = Venv(
    "pipelines", ("images/trainer/requirements.txt", "pipelines/requirements.txt")
)


def _status(record: RunRecord) -> RunStatus:
    return RunStatus(
        run_id=record.name,
        state=record.state,
        message=record.message,
        created=record.created,
        finished=record.finished,
        outputs=record.outputs,
    )


class LocalPipelines:
    """The ``local`` pipelines provider."""

    def __init__(self, store: LocalStore, python: str | None = None) -> None:
        self.store = store
        self.python = python
        self.runs = LocalRuns(store.runs)

    @classmethod
    def from_config(cls, config: OperatorConfig) -> LocalPipelines:
        return cls(LocalStore.configured(config.local_store), config.pipelines_python)

    def _parameters(self, parameters: dict[str, JsonValue]) -> dict[str, JsonValue]:
        return {
            k: self.store.for_trainer(v) if isinstance(v, str) and "://" in v else v
            for k, v in parameters.items()
        }

    def find(self, run: PipelineRun) -> RunStatus | None:
        record = self.runs.read(run.name)
        return _status(record) if record else None

    def start(self, run: PipelineRun) -> RunStatus:
        if run.pipeline not in PIPELINE_NAMES:
            raise PipelinesError(f"unknown pipeline {run.pipeline!r}; known: {PIPELINE_NAMES}")
        found = self.find(run)
        if found is not None:
            return found
        root = checkout()
        env: dict[str, str] = {}
        if root is not None:
            env["PYTHONPATH"] = f"{root / 'images' / 'trainer' / 'src'}:{root / 'pipelines'}"
        folder = self.runs.folder(run.name)
        info: dict[str, Any] = {
            "namespace": run.namespace,
            "pipeline": run.pipeline,
            "parameters": run.parameters,
        }
        params = folder / "parameters.json"
        argv = [
            self.python or "python",
            "-m",
            "slipway_pipelines.run_local",
            "--pipeline",
            run.pipeline,
            "--parameters",
            str(params),
            "--result",
            str(folder / "result.json"),
            "--pipeline-root",
            str(folder / "kfp-root"),
        ]
        try:
            record = self.runs.launch(
                run.name,
                argv,
                env=env,
                venv=None if self.python else PIPELINES_VENV,
                info=info,
                files={params.name: json.dumps(self._parameters(run.parameters), indent=2)},
            )
        except (LocalRunError, StorageError, OSError) as exc:
            raise PipelinesError(f"cannot start local run {run.name}: {exc}") from exc
        return _status(record)

    def status(self, run_id: str) -> RunStatus | None:
        record = self.runs.read(run_id)
        return _status(record) if record else None

    def cancel(self, run_id: str) -> None:
        self.runs.cancel(run_id)
