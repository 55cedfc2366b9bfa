"""What a TuningSweep's experiment is made of: checks CEL cannot make, the experiment's name, its
request, and the trials' exported models.

**Checks.** The trainer reports ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy`` each
epoch (``images/trainer/README.md``): an objective or additional metric outside that list could
never be collected. A searched parameter must be one of the trainer's options or a hyperparameter
of the template's model, with a type the option accepts. Each problem names its field.

**Name.** ``<sweep>-<hash>``, at most ``tuning.EXPERIMENT_NAME_LIMIT`` characters. The hash covers
the object's uid, every spec field except the three trial counts, the resolved dataset version
and the provider, so a spec change gives a new experiment (Katib refuses any other change to a live
Experiment) while a count change keeps it, and a re-created sweep never finds its predecessor's.

**Models.** Trial ``T`` of experiment ``E`` exports to ``<outputUri>/<namespace>/E/T/``; the model's
URI and digest come from the ``metadata.json`` found there (written last by the trainer), and only
for a trial name that is ``E-<suffix>``, a plain DNS label: never from a path a provider reports.
``metadata.json`` must name the experiment's dataset digest; where the operator can read the model
file itself, its sha256 is checked against the digest too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from slipway.api.v1alpha1.tuningsweep import Parameter, TuningSweepSpec
from slipway.backends.optunamap import MAX_GRID, grid_size, settings_problem
from slipway.backends.storage import pod_path, pvc_volumes
from slipway.backends.tuning import EXPERIMENT_NAME_LIMIT, SweepRequest, trial_name_ok
from slipway.builders.meta import Owner, short_name
from slipway.builders.placement import container_resources, pod_placement
from slipway.builders.security import DEFAULT_REQUESTS
from slipway.config import NodePool

from .runs import Store, join
from .trainingplan import DatasetVersion

RENDERING = "1"  # bump when the rendering of an experiment changes: a new name, not a refused edit
TRAINER_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# Searched parameter -> (trainer option, the parameter types it accepts).
OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "learningRate": ("--learning-rate=", ("double", "discrete")),
    "momentum": ("--momentum=", ("double", "discrete")),
    "weightDecay": ("--weight-decay=", ("double", "discrete")),
    "batchSize": ("--batch-size=", ("int", "discrete")),
    "epochs": ("--epochs=", ("int", "discrete")),
    "seed": ("--seed=", ("int", "discrete")),
    "optimizer": ("--optimizer=", ("categorical",)),
}
OPTIMIZERS = ("adam", "adamw", "sgd")
HYPERPARAMETERS = {
    "mlp": ("hidden", "dropout", "activation"),
    "cnn": ("channels", "kernel_size", "hidden", "dropout"),
}


def _parameter_problem(i: int, p: Parameter, model: str) -> str | None:
    where = f"spec.parameters[{i}]"
    known = (*OPTIONS, *HYPERPARAMETERS[model])
    if p.name not in OPTIONS and p.name not in HYPERPARAMETERS[model]:
        return (
            f"{where}.name: {p.name!r} is neither a trainer option nor a {model} hyperparameter; "
            f"known: {', '.join(known)}"
        )
    if p.name in OPTIONS and p.parameter_type not in OPTIONS[p.name][1]:
        kinds = " or ".join(OPTIONS[p.name][1])
        return f"{where}.parameterType: {p.name} takes {kinds}, not {p.parameter_type}"
    space = p.feasible_space
    if p.parameter_type == "int":
        for bound in ("min", "max", "step"):
            value = getattr(space, bound)
            if value is not None and value != int(value):
                return f"{where}.feasibleSpace.{bound}: an int parameter needs a whole number"
    if p.name == "optimizer":
        wrong = [v for v in space.values or [] if v not in OPTIMIZERS]
        if wrong:
            return f"{where}.feasibleSpace.list: unknown optimizers {wrong}; known: {OPTIMIZERS}"
    if p.parameter_type == "discrete" and p.name in ("batchSize", "epochs", "seed"):
        for value in space.values or []:
            if float(value) != int(float(value)):
                return f"{where}.feasibleSpace.list: {p.name} takes whole numbers, not {value}"
    return None


def problems(spec: TuningSweepSpec) -> tuple[str, str] | None:
    """(reason, message) of the first problem admission could not see; the message names the
    field. None when there is none."""
    objective = spec.objective
    for where, name in [
        ("spec.objective.objectiveMetricName", objective.objective_metric_name),
        *(
            (f"spec.objective.additionalMetricNames[{i}]", n)
            for i, n in enumerate(objective.additional_metric_names or [])
        ),
    ]:
        if name not in TRAINER_METRICS:
            return "MetricNotReported", (
                f"{where}: the trainer does not report {name!r}; it reports "
                f"{', '.join(TRAINER_METRICS)} each epoch"
            )
    model = spec.trial_template.spec.trainer.model
    for i, p in enumerate(spec.parameters):
        found = _parameter_problem(i, p, model)
        if found:
            return "InvalidParameter", found
    algorithm = spec.algorithm
    found = settings_problem(
        "spec.algorithm.algorithmSettings",
        algorithm.algorithm_name,
        algorithm.algorithm_settings,
    )
    if found:
        return "InvalidSetting", found
    if spec.early_stopping is not None:
        found = settings_problem(
            "spec.earlyStopping.algorithmSettings",
            spec.early_stopping.algorithm_name,
            spec.early_stopping.algorithm_settings,
        )
        if found:
            return "InvalidSetting", found
    if algorithm.algorithm_name == "grid" and grid_size(spec.parameters) > MAX_GRID:
        return "GridTooLarge", (
            f"spec.parameters: the grid has more than {MAX_GRID} points; use larger steps"
        )
    return None


def experiment_name(
    owner: Owner, spec: TuningSweepSpec, data: DatasetVersion, provider: str
) -> str:
    """The deterministic experiment name (see the module docstring)."""
    identity = spec.model_dump(
        mode="json",
        by_alias=True,
        exclude={"parallel_trial_count", "max_trial_count", "max_failed_trial_count"},
    )
    text = json.dumps(
        [RENDERING, owner.uid, provider, data.digest, data.uri, identity],
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = owner.name if owner.name[:1].isalpha() else f"s{owner.name}"
    return short_name(head, digest, limit=EXPERIMENT_NAME_LIMIT)


def output_root(spec: TuningSweepSpec, namespace: str, experiment: str) -> str:
    return join(spec.trial_template.spec.output_uri, namespace, experiment)


def request(
    owner: Owner,
    name: str,
    spec: TuningSweepSpec,
    data: DatasetVersion,
    pool: NodePool | None,
    in_pods: bool,
) -> SweepRequest:
    """The experiment to run. ``in_pods``: URIs as pods see them, with the claims mounted."""
    template = spec.trial_template.spec
    trainer = template.trainer
    searched = {p.name for p in spec.parameters}
    root = output_root(spec, owner.namespace, name)

    def where(uri: str) -> str:
        return pod_path(uri) if in_pods else uri

    fixed = {
        "epochs": trainer.epochs,
        "batchSize": trainer.batch_size,
        "learningRate": trainer.learning_rate,
        "optimizer": trainer.optimizer,
        "seed": trainer.seed,
    }
    args = [
        f"--dataset-uri={where(data.uri)}",
        f"--dataset-digest={data.digest}",
        f"--model-type={trainer.model}",
        *(f"{OPTIONS[k][0]}{v}" for k, v in fixed.items() if k not in searched),
        *(
            f"--hparam={k}={v}"
            for k, v in sorted((trainer.hyperparameters or {}).items())
            if k not in searched
        ),
    ]
    options = {
        p.name: OPTIONS[p.name][0] if p.name in OPTIONS else f"--hparam={p.name}="
        for p in spec.parameters
    }
    volumes, mounts = pvc_volumes(data.uri, root) if in_pods else ([], [])
    return SweepRequest(
        name=name,
        namespace=owner.namespace,
        objective=spec.objective,
        algorithm=spec.algorithm,
        early_stopping=spec.early_stopping,
        parameters=tuple(spec.parameters),
        parallel=spec.parallel_trial_count,
        max_trials=spec.max_trial_count,
        max_failed=spec.max_failed_trial_count,
        image=trainer.image,
        args=tuple(args),
        options=options,
        output_root=root,
        metrics_collector=spec.metrics_collector,
        resume_policy=spec.resume_policy,
        workers=template.workers,
        gpus=template.placement.gpus,
        resources=container_resources(
            template.resources, template.placement, pool, DEFAULT_REQUESTS
        ),
        placement=pod_placement(pool),
        run_policy=template.run_policy,
        volumes=tuple(volumes),
        volume_mounts=tuple(mounts),
    )


@dataclass(frozen=True)
class TrialOutput:
    """A trial's exported model, read from its metadata.json, or why there is none."""

    uri: str | None = None
    digest: str | None = None
    metrics: dict[str, float] | None = None
    problem: str | None = None


def trial_output(
    store: Store, root: str, experiment: str, trial: str, dataset_digest: str, verify: bool
) -> TrialOutput:
    """The model trial ``trial`` exported under ``root`` (see the module docstring)."""
    if not trial_name_ok(experiment, trial):
        return TrialOutput(problem=f"trial name {trial!r} does not belong to {experiment}")
    folder = join(root, trial)
    meta = store.read_json(join(folder, "metadata.json"))
    if meta is None:
        return TrialOutput(problem=f"cannot read {folder}/metadata.json")
    model = meta.get("model") or {}
    sha = str(model.get("sha256") or "")
    file_name = str(model.get("file") or "model.onnx")
    if len(sha) != 64 or "/" in file_name or file_name.startswith("."):
        return TrialOutput(problem=f"{folder}/metadata.json has no valid model entry")
    found = str((meta.get("dataset") or {}).get("digest") or "")
    if found != dataset_digest:
        return TrialOutput(
            problem=f"{folder}/metadata.json names dataset {found or 'none'}, not {dataset_digest}"
        )
    uri = join(folder, file_name)
    if verify:
        data = store.read_bytes(uri)
        if data is not None and hashlib.sha256(data).hexdigest() != sha:
            return TrialOutput(problem=f"{uri} does not match the sha256 in metadata.json")
    validation = (meta.get("metrics") or {}).get("validation") or {}
    metrics = {
        str(k): float(v)
        for k, v in validation.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return TrialOutput(uri=uri, digest=f"sha256:{sha}", metrics=metrics)


def describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
