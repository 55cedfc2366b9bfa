"""Training provider ``local``: ``torchrun`` on this machine, one process per worker (gloo on CPU).

``start`` launches ``python -m torch.distributed.run --standalone --nnodes=1
--nproc-per-node=<workers> --module slipway_trainer <args>`` in the trainer's environment
(``trainerPython``, else the one ``hack/venv.sh`` makes for ``images/trainer/test.sh``), detached
and supervised by ``localruns`` in ``<store>/runs/<name>/``, exactly like the local pipelines
provider; a second ``start`` with the same name (a restarted operator) finds the run and starts
nothing. Storage URIs in the arguments become paths of this machine (``storage.LocalStore``).
Nothing is rendered (``kind == "None"``); ``observe`` reads the run folder.
"""

from __future__ import annotations

from typing import Any

from slipway.builders.meta import Owner
from slipway.config import OperatorConfig

from .localruns import (
    CANCELED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    LocalRunError,
    LocalRuns,
    Venv,
    checkout,
)
from .storage import LocalStore, StorageError
from .training import FAILED as T_FAILED
from .training import PENDING as T_PENDING
from .training import RUNNING as T_RUNNING
from .training import SUCCEEDED as T_SUCCEEDED
from .training import TrainingRequest, TrainingState

TRAINER_VENV = Venv("trainer", ("images/trainer/requirements.txt",))
_PHASES = {
    PENDING: T_PENDING,
    RUNNING: T_RUNNING,
    SUCCEEDED: T_SUCCEEDED,
    FAILED: T_FAILED,
    CANCELED: T_FAILED,
}


class LocalTraining:
    """The ``local`` training provider."""

    api_version = "v1"
    kind = "None"

    def __init__(self, store: LocalStore, python: str | None = None) -> None:
        self.store = store
        self.python = python
        self.runs = LocalRuns(store.runs)

    @classmethod
    def from_config(cls, config: OperatorConfig) -> LocalTraining:
        return cls(LocalStore.configured(config.local_store), config.trainer_python)

    def _arg(self, arg: str) -> str:
        if arg.startswith("--") and "=" in arg:
            option, value = arg.split("=", 1)
            return f"{option}={self._arg(value)}"
        if arg.startswith(("pvc://", "file://")):
            return self.store.for_trainer(arg)
        return arg

    def argv(self, request: TrainingRequest) -> list[str]:
        """The command line of the run (the interpreter first)."""
        return [
            self.python or "python",
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc-per-node={request.workers}",
            "--module",
            "slipway_trainer",
            *(self._arg(a) for a in request.args),
        ]

    def render(self, owner: Owner, request: TrainingRequest) -> dict[str, Any] | None:
        return None

    def start(self, request: TrainingRequest) -> None:
        if self.runs.read(request.name) is not None:
            return
        env = dict(request.env)
        root = checkout()
        if root is not None:
            env["PYTHONPATH"] = str(root / "images" / "trainer" / "src")
        try:
            self.runs.launch(
                request.name,
                self.argv(request),
                env=env,
                venv=None if self.python else TRAINER_VENV,
                info={"namespace": request.namespace, "workers": request.workers},
            )
        except (StorageError, OSError) as exc:
            raise LocalRunError(f"cannot start local run {request.name}: {exc}") from exc

    def observe(self, request: TrainingRequest, live: dict[str, Any] | None) -> TrainingState:
        record = self.runs.read(request.name)
        if record is None:
            return TrainingState(T_PENDING, f"local run {request.name} not started")
        message = record.message or f"local run {record.state.lower()}"
        if record.state == CANCELED:
            message = "local run canceled"
        return TrainingState(
            _PHASES.get(record.state, T_PENDING),
            message,
            started=record.created,
            finished=record.finished,
        )

    def cancel(self, request: TrainingRequest) -> None:
        self.runs.cancel(request.name)
