"""What a TrainingJob's run is made of: its dataset version, its fingerprint, the run itself, and
what the run left behind.

**Dataset.** ``spec.dataset`` names a Dataset of the namespace and a version or digest in its
``status.versions``. A missing Dataset, one still ingesting, or a version it does not have is a
Verdict naming the reason (the TrainingJob is reconciled again when the Dataset changes).

**Fingerprint.** ``python -m slipway_trainer --print-fingerprint`` needs the trainer's environment
(torch), which the operator does not have, so the operator computes its own fingerprint before
any run, over the resolved inputs: the dataset version's digest, the trainer code, and every spec
field that shapes the weights (model, hyperparameters, epochs, batch size, learning rate,
optimizer, seed) plus workers and GPUs (DDP and GPU kernels change the arithmetic). The trainer
code is the sha256 the trainer itself computes over its sources (``metadata.code_digest``'s
recipe) when the run uses this checkout's trainer (the local providers), and the trainer image
reference otherwise: a tag stands for its code, so retagging different code under the same tag
defeats reuse (pin images by digest to be safe). The quality gate is not part of it: it decides
whether a model is published, not which model is trained. The trainer's own fingerprint, from
``metadata.json``, is recorded next to the model.

**Runs.** One worker without GPUs runs the train-evaluate-export pipeline (its parameters below);
otherwise a ``TrainingRequest`` goes to the distributed provider, with the trainer's CLI arguments.
Each run writes to ``<outputUri>/<namespace>/<run name>/``.

**Outputs.** ``metadata.json`` is written last, so its presence means success; it gives the model's
sha256, the trainer's fingerprint and the held-out metrics; ``metrics.json`` gives the per-epoch
history (rewritten after every epoch by the trainer CLI, so a distributed run shows progress).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from slipway.api.v1alpha1.common import API_VERSION
from slipway.api.v1alpha1.dataset import INFO as DATASET
from slipway.api.v1alpha1.trainingjob import MAX_HISTORY, DatasetRef, TrainingJobSpec
from slipway.backends import PipelineRun, TrainingRequest
from slipway.backends.localruns import checkout
from slipway.backends.pipelines import TRAINING, run_name
from slipway.backends.storage import pod_path, pvc_volumes
from slipway.backends.training import TRAINING_NAME_LIMIT
from slipway.builders.meta import Owner
from slipway.builders.placement import container_resources, pod_placement
from slipway.builders.security import DEFAULT_REQUESTS
from slipway.config import DEFAULT_GPU_RESOURCE, NodePool

from .base import Context
from .conditions import Verdict
from .runs import Store, join


@dataclass(frozen=True)
class DatasetVersion:
    """A resolved dataset version."""

    name: str
    version: str
    digest: str
    uri: str


def resolve_dataset(ctx: Context, namespace: str, ref: DatasetRef) -> DatasetVersion | Verdict:
    """The version ``ref`` names, or a Verdict saying why there is none (yet)."""
    wanted = f"version {ref.version}" if ref.version else f"digest {ref.digest}"
    ds = ctx.cluster.get(API_VERSION, DATASET.kind, namespace, ref.name)
    if ds is None:
        return Verdict(
            "Pending",
            False,
            "DatasetNotFound",
            f"spec.dataset: Dataset {ref.name!r} does not exist in {namespace}; the job starts "
            "when it exists and has that version",
            degraded=True,
        )
    status = ds.get("status") or {}
    versions = status.get("versions") or []
    for v in versions:
        if (ref.version and v.get("version") == ref.version) or (
            ref.digest and v.get("digest") == ref.digest
        ):
            return DatasetVersion(ref.name, str(v["version"]), str(v["digest"]), str(v["uri"]))
    ingestion = status.get("ingestion") or {}
    if not status or ingestion.get("state") not in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"):
        return Verdict(
            "Pending",
            False,
            "WaitingForDataset",
            f"Dataset {ref.name!r} is ingesting; waiting for its {wanted}",
            progressing=True,
        )
    kept = ", ".join(str(v.get("version")) for v in versions) or "none"
    problem = next(
        (
            c.get("message")
            for c in status.get("conditions") or []
            if c.get("type") == "Degraded" and c.get("status") == "True"
        ),
        None,
    )
    return Verdict(
        "Pending",
        False,
        "DatasetVersionNotFound",
        f"spec.dataset: Dataset {ref.name!r} has no {wanted} (kept versions: {kept})"
        + (f"; the Dataset reports: {problem}" if problem else ""),
        degraded=True,
    )


def trainer_code(image: str, local: bool) -> str:
    """What stands for the trainer's code in the fingerprint (see the module docstring)."""
    root = checkout()
    if not local or root is None:
        return f"image:{image}"
    package = root / "images" / "trainer" / "src" / "slipway_trainer"
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(
            path.name.encode()
            + b"\0"
            + hashlib.sha256(path.read_bytes()).hexdigest().encode()
            + b"\n"
        )
    return "sha256:" + digest.hexdigest()


def fingerprint(spec: TrainingJobSpec, dataset_digest: str, code: str) -> str:
    """sha256 of the resolved inputs that determine the trained weights."""
    trainer = spec.trainer
    inputs = {
        "datasetDigest": dataset_digest,
        "code": code,
        "model": trainer.model,
        "hyperparameters": dict(sorted((trainer.hyperparameters or {}).items())),
        "epochs": trainer.epochs,
        "batchSize": trainer.batch_size,
        "learningRate": trainer.learning_rate,
        "optimizer": trainer.optimizer,
        "seed": trainer.seed,
        "workers": spec.workers,
        "gpus": spec.placement.gpus,
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def distributed(spec: TrainingJobSpec) -> bool:
    """More than one worker, or GPUs: the distributed provider; else the pipeline."""
    return spec.workers > 1 or spec.placement.gpus > 0


def output_uri(spec: TrainingJobSpec, namespace: str, run: str) -> str:
    return join(spec.output_uri, namespace, run)


def run_names(owner: Owner, generation: int, spec: TrainingJobSpec) -> str:
    limit = TRAINING_NAME_LIMIT if distributed(spec) else 63
    return run_name(owner, generation, limit)


def pipeline_run(
    owner: Owner, name: str, spec: TrainingJobSpec, data: DatasetVersion, pool: NodePool | None
) -> PipelineRun:
    """The train-evaluate-export run (one worker, no GPUs)."""
    trainer = spec.trainer
    placement = pod_placement(pool)
    parameters: dict[str, Any] = {
        "dataset_uri": data.uri,
        "dataset_digest": data.digest,
        "output_uri": output_uri(spec, owner.namespace, name),
        "model_type": trainer.model,
        "hyperparameters_json": json.dumps(dict(sorted((trainer.hyperparameters or {}).items()))),
        "epochs": trainer.epochs,
        "batch_size": trainer.batch_size,
        "learning_rate": trainer.learning_rate,
        "optimizer": trainer.optimizer,
        "seed": trainer.seed,
        "checkpoint_uri": "",
        "gate_metric": spec.quality_gate.metric,
        "min_value": spec.quality_gate.minimum,
        "node_selector": placement.get("nodeSelector") or {},
        "tolerations": placement.get("tolerations") or [],
        "accelerator_type": (pool.gpu_resource if pool else None) or DEFAULT_GPU_RESOURCE,
        "gpus": 0,
    }
    return PipelineRun(name, owner.namespace, TRAINING, parameters)


def training_request(
    owner: Owner,
    name: str,
    spec: TrainingJobSpec,
    data: DatasetVersion,
    pool: NodePool | None,
    in_pods: bool,
) -> TrainingRequest:
    """The distributed job. ``in_pods``: URIs as pods see them, with the claims mounted; else
    (the local provider) URIs as given, which it maps to its store."""
    trainer = spec.trainer
    output = output_uri(spec, owner.namespace, name)

    def where(uri: str) -> str:
        return pod_path(uri) if in_pods else uri

    args = [
        f"--dataset-uri={where(data.uri)}",
        f"--dataset-digest={data.digest}",
        f"--output-uri={where(output)}",
        f"--model-type={trainer.model}",
        f"--epochs={trainer.epochs}",
        f"--batch-size={trainer.batch_size}",
        f"--learning-rate={trainer.learning_rate}",
        f"--optimizer={trainer.optimizer}",
        f"--seed={trainer.seed}",
        *(f"--hparam={k}={v}" for k, v in sorted((trainer.hyperparameters or {}).items())),
    ]
    volumes, mounts = pvc_volumes(data.uri, output) if in_pods else ([], [])
    return TrainingRequest(
        name=name,
        namespace=owner.namespace,
        image=trainer.image,
        args=args,
        workers=spec.workers,
        gpus=spec.placement.gpus,
        resources=container_resources(spec.resources, spec.placement, pool, DEFAULT_REQUESTS),
        placement=pod_placement(pool),
        run_policy=spec.run_policy,
        volumes=volumes,
        volume_mounts=mounts,
    )


def history(store: Store, output: str) -> list[dict[str, Any]] | None:
    """The per-epoch records of ``metrics.json`` (the last ``MAX_HISTORY``), in status form."""
    metrics = store.read_json(join(output, "metrics.json"))
    if not metrics:
        return None
    out = []
    for record in (metrics.get("epochs") or [])[-MAX_HISTORY:]:
        if not isinstance(record, dict) or "epoch" not in record:
            continue
        entry: dict[str, Any] = {"epoch": int(record["epoch"])}
        for key, name in (
            ("loss", "loss"),
            ("accuracy", "accuracy"),
            ("val_loss", "valLoss"),
            ("val_accuracy", "valAccuracy"),
        ):
            if isinstance(record.get(key), int | float):
                entry[name] = float(record[key])
        out.append(entry)
    return out or None


@dataclass(frozen=True)
class Outputs:
    """What a successful run left: the model and its held-out metrics."""

    model: dict[str, str]
    metrics: dict[str, float]


def outputs(store: Store, output: str) -> Outputs | None:
    """The model and metrics from ``metadata.json``; None while it is absent or unreadable."""
    meta = store.read_json(join(output, "metadata.json"))
    model = (meta or {}).get("model") or {}
    if not meta or not model.get("sha256"):
        return None
    validation = (meta.get("metrics") or {}).get("validation") or {}
    metrics = {
        k: float(v)
        for k, v in validation.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    found = {
        "uri": join(output, str(model.get("file") or "model.onnx")),
        "digest": f"sha256:{model['sha256']}",
    }
    if meta.get("fingerprint"):
        found["fingerprint"] = str(meta["fingerprint"])
    return Outputs(found, metrics)


def gate_failure(spec: TrainingJobSpec, metrics: dict[str, Any]) -> str | None:
    """Why the model fails the quality gate, or None when it passes."""
    gate = spec.quality_gate
    value = metrics.get(gate.metric)
    if not isinstance(value, int | float):
        return f"the held-out metrics have no {gate.metric} to check the quality gate against"
    if value < gate.minimum:
        return (
            f"quality gate failed: held-out {gate.metric} {value:.4f} is below the minimum "
            f"{gate.minimum} (spec.qualityGate); no model is published"
        )
    return None
