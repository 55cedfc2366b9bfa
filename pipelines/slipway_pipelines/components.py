"""Kubeflow Pipelines v2 components, each a thin, typed wrapper around ``slipway_trainer``.

(No ``from __future__ import annotations`` here: kfp reads the real annotation objects.)
Lightweight components are serialised from their source, so every body imports what it uses. On a
cluster they run in the trainer image (``TRAINER_IMAGE``), which has ``slipway_trainer`` installed;
under ``kfp.local``'s subprocess runner they run in the current interpreter. Artifact folders:

* ``Dataset``: a snapshot folder (``manifest.json`` + ``data/``); metadata ``digest``, ``rows``;
* ``Model`` from ``train_model``: ``model.pt`` + ``train.json``;
* ``Model`` from ``export_model``: model.onnx, metadata.json, metrics.json, model.pt.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from . import TRAINER_IMAGE


@dsl.component(base_image=TRAINER_IMAGE)
def ingest_dataset(source_uri: str, dataset: Output[Dataset]) -> str:
    """Read a source (builtin://, path, s3://, gs://, https://) into a snapshot."""
    from slipway_trainer import snapshot
    from slipway_trainer.sources import load_source

    table = load_source(source_uri)
    digest = snapshot.write_at(table, dataset.path, source=source_uri)
    dataset.metadata.update({"digest": digest, "rows": table.num_rows, "source": source_uri})
    print(f"snapshot of {source_uri}: {table.num_rows} rows, digest {digest}")
    return digest


@dsl.component(base_image=TRAINER_IMAGE)
def validate_dataset(dataset: Input[Dataset], rules_json: str, report: Output[Markdown]) -> bool:
    """Check the snapshot's digest and the rules; fail with the report if any rule fails."""
    import json

    from slipway_trainer import snapshot
    from slipway_trainer.dataset import parse_rules
    from slipway_trainer.validation import ValidationFailed, validate

    snap = snapshot.load(dataset.path, dataset.metadata.get("digest") or None)
    result = validate(snap.table, parse_rules(rules_json))
    with open(report.path, "w") as handle:
        handle.write(
            "```\n" + result.to_text() + "\n```\n\n" + json.dumps(result.to_dict(), indent=2) + "\n"
        )
    report.metadata.update({"ok": result.ok, "validation": result.to_dict()})
    print(result.to_text())
    if not result.ok:
        raise ValidationFailed(result)
    return True


@dsl.component(base_image=TRAINER_IMAGE)
def publish_snapshot(
    dataset: Input[Dataset],
    report: Input[Markdown],
    store_uri: str,
    name: str,
    version: str,
    allow_identical: bool,
) -> NamedTuple("Published", [("uri", str), ("digest", str)]):  # type: ignore[valid-type]
    """Copy a validated snapshot and its report to ``<store_uri>/<name>/<version>`` (immutable)."""
    from collections import namedtuple

    from slipway_trainer import snapshot

    if report.metadata.get("ok") is not True:
        raise RuntimeError("refusing to publish a snapshot that did not pass validation")
    uri = snapshot.version_uri(store_uri, name, version)
    digest = snapshot.copy(
        dataset.path,
        uri,
        dataset.metadata.get("digest") or None,
        allow_identical=allow_identical,
        validation=report.metadata.get("validation"),
    )
    print(f"published {uri} with digest {digest}")
    return namedtuple("Published", ["uri", "digest"])(uri, digest)


@dsl.component(base_image=TRAINER_IMAGE)
def train_model(
    dataset_uri: str,
    dataset_digest: str,
    model_type: str,
    hyperparameters_json: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    optimizer: str,
    seed: int,
    checkpoint_uri: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> None:
    """Train on a snapshot (digest checked first); checkpoints in ``checkpoint_uri`` or here."""
    import json
    import os

    from slipway_trainer.config import TrainConfig
    from slipway_trainer.distributed import setup
    from slipway_trainer.engine import train
    from slipway_trainer.steps import prepare, save_trained

    os.makedirs(model.path, exist_ok=True)
    cfg = TrainConfig(
        dataset_uri=dataset_uri,
        dataset_digest=dataset_digest,
        output_uri=model.path,
        model_type=model_type,
        hyperparameters=json.loads(hyperparameters_json or "{}"),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimizer=optimizer,
        seed=seed,
        checkpoint_uri=checkpoint_uri,
    )
    snap, data = prepare(cfg)
    result = train(cfg, data, snap.digest, setup(cfg.device))
    save_trained(model.path, cfg, snap.digest, data, result.model, {"history": result.history})
    last = result.history[-1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        metrics.log_metric(key, float(last[key]))
    model.metadata.update(
        {"datasetDigest": snap.digest, "modelType": model_type, "framework": "pytorch"}
    )


@dsl.component(base_image=TRAINER_IMAGE)
def evaluate_model(
    model: Input[Model],
    gate_metric: str,
    min_value: float,
    evaluation: Output[Metrics],
    report: Output[Artifact],
) -> float:
    """Score the model on the held-out split; the quality gate fails the run below ``min_value``.

    ``evaluation`` holds the scalar metrics; ``report`` the full JSON (per-class precision/recall).
    """
    import json

    from slipway_trainer.steps import evaluate_trained

    result = evaluate_trained(model.path)
    scalars = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    for key, value in scalars.items():
        evaluation.log_metric(key, float(value))
    with open(report.path, "w") as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    report.metadata.update({"gateMetric": gate_metric, "minValue": min_value})
    if gate_metric not in scalars:
        raise ValueError(
            f"unknown gate metric {gate_metric!r}; valid: {', '.join(sorted(scalars))}"
        )
    value = float(scalars[gate_metric])
    print(f"quality gate: {gate_metric}={value:.6f}, minimum {min_value}")
    if value < min_value:
        raise RuntimeError(
            f"quality gate failed: held-out {gate_metric} {value:.6f} "
            f"is below the minimum {min_value}"
        )
    return value


@dsl.component(base_image=TRAINER_IMAGE)
def export_model(
    model: Input[Model], gate_value: float, output_uri: str, onnx_model: Output[Model]
) -> str:
    """Export ONNX, check parity, write model.onnx + metadata.json (also to ``output_uri``)."""
    import os

    from slipway_trainer.steps import load_trained, prepare, publish

    trained, cfg, info = load_trained(model.path)
    cfg.dataset_digest = info["datasetDigest"]
    snap, data = prepare(cfg)
    print(f"exporting a model that passed the quality gate at {gate_value:.6f}")
    os.makedirs(onnx_model.path, exist_ok=True)
    meta = {}
    for target in [onnx_model.path] + ([output_uri] if output_uri else []):
        meta = publish(cfg, trained, data, snap.digest, info.get("history", []), {}, target)
    onnx_model.metadata.update(
        {
            "fingerprint": meta["fingerprint"],
            "sha256": meta["model"]["sha256"],
            "accuracy": meta["metrics"]["validation"]["accuracy"],
        }
    )
    return str(meta["fingerprint"])
