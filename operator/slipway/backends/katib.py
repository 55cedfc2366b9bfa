"""Tuning provider ``katib``: one Katib ``Experiment`` (``kubeflow.org/v1beta1``) per experiment.

Rendered against the pinned Katib v0.19.0 CRD and the rules of its admission webhook (which the
unit tests restate): every trial parameter is referenced in the trial template and every
``${trialParameters.X}`` has a trial parameter; success and failure conditions are explicit (the
webhook that defaults them may be absent); names stay within Katib's 40 characters.

* **Trials.** One worker without GPUs: a batch ``Job`` whose container ``trainer`` runs
  ``python -m slipway_trainer``. More workers or GPUs: a Kubeflow Trainer ``TrainJob`` (supported
  by Katib since v0.19), rendered by the ``trainjob`` training provider (container ``node``,
  torchrun). Both succeed on condition ``Complete`` and fail on ``Failed``. Pods meet the
  restricted Pod Security profile and carry the node pool's placement; Katib's injected metrics
  sidecar is Katib's to configure.
* **Parameters.** Each searched parameter is a trial parameter of the same name, substituted into
  the trainer's option (``--learning-rate=${trialParameters.learningRate}``). The trial's own name
  (``${trialSpec.Name}``) is the last part of ``--output-uri``: each trial exports to
  ``<outputRoot>/<trial name>/``.
* **Metrics.** ``File``: the trainer appends one JSON line per epoch to ``--metrics-file``.
  Katib's JSON format only takes metric values written as JSON strings and the trainer writes
  numbers, so the file is collected in Katib's TEXT format with a filter that reads ``"name":
  number`` pairs. ``StdOut``: the trainer's Katib line (``epoch=3 ... val_accuracy=0.94``), read
  by Katib's default filter. Every metric's strategy is ``latest``: the exported model is the last
  epoch's, so the trial's objective is that epoch's value.

Status: the conditions Created, Running, Restarting, Succeeded, Failed (Katib's reasons), the
trial counters and ``currentOptimalTrial``; each Trial's conditions and observation.
"""

from __future__ import annotations

from typing import Any

from slipway.builders.meta import Owner, labels, metadata
from slipway.builders.security import (
    container_security_context,
    pod_security_context,
    scratch_mount,
    scratch_volume,
)
from slipway.config import OperatorConfig

from .storage import pod_path
from .training import TrainingRequest
from .trainjob import NODE, TrainJobTraining, conditions_of, is_true
from .tuning import (
    CREATED,
    EARLY_STOPPED,
    FAILED,
    KILLED,
    METRICS_UNAVAILABLE,
    PENDING,
    RUNNING,
    SUCCEEDED,
    SweepRequest,
    SweepState,
    TrialCounts,
    TrialResult,
)

KATIB_API = "kubeflow.org/v1beta1"
COMPONENT = "tuning"
CONTAINER = "trainer"
TRIAL_NAME = "trialName"  # the trial parameter holding ${trialSpec.Name}
METRICS_FILE = "/var/log/katib/metrics.jsonl"  # Katib mounts its metrics volume at the folder
JSON_PAIRS = r'"([\w-]+)"\s*:\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)'
SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
UNAVAILABLE = "unavailable"
_TRIAL_STATES = (  # Katib's order: the first true condition decides
    ("Killed", KILLED),
    ("Failed", FAILED),
    ("Succeeded", SUCCEEDED),
    ("EarlyStopped", EARLY_STOPPED),
    ("Running", RUNNING),
    ("MetricsUnavailable", METRICS_UNAVAILABLE),
)


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def render_parameters(request: SweepRequest) -> list[dict[str, Any]]:
    """Katib's ``parameters``: bounds and steps as strings, as Katib's API has them."""
    out = []
    for p in request.parameters:
        space = p.feasible_space
        integer = p.parameter_type == "int"
        feasible: dict[str, Any] = {}
        if space.min is not None:
            feasible["min"] = _number(space.min, integer)
        if space.max is not None:
            feasible["max"] = _number(space.max, integer)
        if space.step is not None:
            feasible["step"] = _number(space.step, integer)
        if space.values:
            feasible["list"] = list(space.values)
        if space.distribution:
            feasible["distribution"] = space.distribution
        out.append({"name": p.name, "parameterType": p.parameter_type, "feasibleSpace": feasible})
    return out


def _trial_args(request: SweepRequest) -> list[str]:
    values = {name: f"${{trialParameters.{name}}}" for name in request.options}
    output = f"{pod_path(request.output_root).rstrip('/')}/${{trialParameters.{TRIAL_NAME}}}"
    metrics = METRICS_FILE if request.metrics_collector == "File" else ""
    return request.trial_args(values, output, metrics)


def _job(owner: Owner, request: SweepRequest) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": request.image,
        "command": ["python", "-m", "slipway_trainer"],
        "args": _trial_args(request),
        "securityContext": container_security_context(),
        "volumeMounts": [scratch_mount(), *request.volume_mounts],
    }
    if request.resources:
        container["resources"] = request.resources
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [scratch_volume(), *request.volumes],
        **request.placement,
    }
    job: dict[str, Any] = {
        "backoffLimit": request.run_policy.backoff_limit,
        "template": {
            "metadata": {
                "labels": labels(owner, COMPONENT),
                "annotations": {"sidecar.istio.io/inject": "false"},
            },
            "spec": pod,
        },
    }
    if request.run_policy.active_deadline_seconds:
        job["activeDeadlineSeconds"] = request.run_policy.active_deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "spec": job}


def _trainjob(owner: Owner, request: SweepRequest, trainjob: TrainJobTraining) -> dict[str, Any]:
    rendered = trainjob.render(
        owner,
        TrainingRequest(
            name=request.name,  # not used: Katib names each TrainJob after its trial
            namespace=request.namespace,
            image=request.image,
            args=_trial_args(request),
            workers=request.workers,
            gpus=request.gpus,
            resources=request.resources,
            placement=request.placement,
            run_policy=request.run_policy,
            volumes=list(request.volumes),
            volume_mounts=list(request.volume_mounts),
        ),
    )
    assert rendered is not None
    return {key: rendered[key] for key in ("apiVersion", "kind", "spec")}


def distributed(request: SweepRequest) -> bool:
    return request.workers > 1 or request.gpus > 0


class KatibTuning:
    """The ``katib`` tuning provider."""

    api_version = KATIB_API
    kind = "Experiment"

    def __init__(self, trainjob: TrainJobTraining | None = None) -> None:
        self.trainjob = trainjob or TrainJobTraining()

    @classmethod
    def from_config(cls, config: OperatorConfig) -> KatibTuning:
        return cls(TrainJobTraining(config.trainjob_runtime, config.trainjob_runtime_kind))

    def render(self, owner: Owner, request: SweepRequest) -> dict[str, Any] | None:
        objective: dict[str, Any] = {
            "type": request.objective.type,
            "objectiveMetricName": request.objective.objective_metric_name,
            "metricStrategies": [{"name": m, "value": "latest"} for m in request.metric_names],
        }
        if request.objective.goal is not None:
            objective["goal"] = request.objective.goal
        if request.objective.additional_metric_names:
            objective["additionalMetricNames"] = list(request.objective.additional_metric_names)
        algorithm: dict[str, Any] = {"algorithmName": request.algorithm.algorithm_name}
        if request.algorithm.algorithm_settings:
            algorithm["algorithmSettings"] = [
                s.to_api() for s in request.algorithm.algorithm_settings
            ]
        if distributed(request):
            trial_spec, primary = _trainjob(owner, request, self.trainjob), NODE
        else:
            trial_spec, primary = _job(owner, request), CONTAINER
        trial_parameters = [
            {"name": name, "reference": name, "description": f"trainer option {option.rstrip('=')}"}
            for name, option in request.options.items()
        ]
        trial_parameters.append(
            {
                "name": TRIAL_NAME,
                "reference": "${trialSpec.Name}",
                "description": "the trial's name: the last part of its output location",
            }
        )
        template: dict[str, Any] = {
            "primaryContainerName": primary,
            "successCondition": SUCCESS,
            "failureCondition": FAILURE,
            "trialParameters": trial_parameters,
            "trialSpec": trial_spec,
        }
        if distributed(request):
            # Katib reads the metrics of the TrainJob's first node (its default for TrainJobs).
            template["primaryPodLabels"] = {
                "jobset.sigs.k8s.io/replicatedjob-name": NODE,
                "batch.kubernetes.io/job-completion-index": "0",
            }
        spec: dict[str, Any] = {
            "objective": objective,
            "algorithm": algorithm,
            "parameters": render_parameters(request),
            "parallelTrialCount": request.parallel,
            "maxTrialCount": request.max_trials,
            "resumePolicy": request.resume_policy,
            "metricsCollectorSpec": _collector(request),
            "trialTemplate": template,
        }
        if request.max_failed is not None:
            spec["maxFailedTrialCount"] = request.max_failed
        if request.early_stopping is not None:
            stopping: dict[str, Any] = {"algorithmName": request.early_stopping.algorithm_name}
            if request.early_stopping.algorithm_settings:
                stopping["algorithmSettings"] = [
                    s.to_api() for s in request.early_stopping.algorithm_settings
                ]
            spec["earlyStopping"] = stopping
        return {
            "apiVersion": KATIB_API,
            "kind": "Experiment",
            "metadata": metadata(owner, request.name, COMPONENT),
            "spec": spec,
        }

    def trials_of(self, request: SweepRequest) -> tuple[str, str, str] | None:
        return KATIB_API, "Trial", f"katib.kubeflow.org/experiment={request.name}"

    def start(self, owner: Owner, request: SweepRequest) -> None:
        return None

    def stop(self, owner: Owner, keep: set[str]) -> list[str]:
        return []

    def observe(
        self, request: SweepRequest, live: dict[str, Any] | None, trials: list[dict[str, Any]]
    ) -> SweepState:
        if live is None:
            return SweepState(PENDING, CREATED, f"Experiment {request.name} not created yet")
        status = live.get("status") or {}
        conditions = conditions_of(live)
        phase, reason, message = PENDING, CREATED, "waiting for Katib to start the experiment"
        for type_, phase_ in (
            ("Succeeded", SUCCEEDED),
            ("Failed", FAILED),
            ("Running", RUNNING),
            ("Restarting", RUNNING),
            ("Created", PENDING),
        ):
            condition = conditions.get(type_)
            if is_true(condition):
                assert condition is not None
                phase = phase_
                reason = str(condition.get("reason") or reason)
                message = str(condition.get("message") or "")
                break
        counts = TrialCounts(
            total=int(status.get("trials") or 0),
            pending=int(status.get("trialsPending") or 0),
            running=int(status.get("trialsRunning") or 0),
            succeeded=int(status.get("trialsSucceeded") or 0),
            failed=int(status.get("trialsFailed") or 0),
            killed=int(status.get("trialsKilled") or 0),
            early_stopped=int(status.get("trialsEarlyStopped") or 0),
            metrics_unavailable=int(status.get("trialMetricsUnavailable") or 0),
        )
        objective = request.objective.objective_metric_name
        results = [_trial(t, objective) for t in trials]
        optimal = status.get("currentOptimalTrial") or {}
        best = str(optimal.get("bestTrialName") or "") or None
        if best is not None and all(r.name != best for r in results):
            # No Trial object to read (yet): the experiment's own record of its best trial.
            assignments = optimal.get("parameterAssignments") or []
            metrics = _metrics((optimal.get("observation") or {}).get("metrics") or [])
            results.append(
                TrialResult(
                    best,
                    SUCCEEDED,
                    {str(a.get("name")): str(a.get("value")) for a in assignments},
                    metrics.get(objective),
                    metrics,
                )
            )
        return SweepState(
            phase,
            reason,
            message,
            counts,
            tuple(results),
            best,
            started=status.get("startTime"),
            finished=status.get("completionTime"),
        )


def _collector(request: SweepRequest) -> dict[str, Any]:
    if request.metrics_collector == "StdOut":
        return {"collector": {"kind": "StdOut"}}
    return {
        "collector": {"kind": "File"},
        "source": {
            "fileSystemPath": {"path": METRICS_FILE, "kind": "File", "format": "TEXT"},
            "filter": {"metricsFormat": [JSON_PAIRS]},
        },
    }


def _metrics(items: list[dict[str, Any]]) -> dict[str, float]:
    """Katib's observation metrics (strings) as numbers: the latest value of each."""
    out = {}
    for m in items:
        value = m.get("latest")
        if value in (None, "", UNAVAILABLE):
            continue
        try:
            out[str(m.get("name"))] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _trial(trial: dict[str, Any], objective: str) -> TrialResult:
    conditions = conditions_of(trial)
    state = next((s for t, s in _TRIAL_STATES if is_true(conditions.get(t))), PENDING)
    assignments = (trial.get("spec") or {}).get("parameterAssignments") or []
    observation = (trial.get("status") or {}).get("observation") or {}
    metrics = _metrics(observation.get("metrics") or [])
    return TrialResult(
        str(trial["metadata"]["name"]),
        state,
        {str(a.get("name")): str(a.get("value")) for a in assignments},
        metrics.get(objective),
        metrics,
    )
