"""The two pipelines the operator submits.

``slipway-dataset-ingestion``: ingest (snapshot) -> validate (rules; fails with the report) ->
publish to ``<store_uri>/<name>/<version>`` (immutable). Returns the dataset digest.

``slipway-train-evaluate-export``: train -> evaluate (quality gate: ``gate_metric`` >= ``min_value``
on the held-out split) -> export (ONNX + parity check + metadata.json, copied to ``output_uri``).
GPU placement of the training step comes from parameters through kfp-kubernetes:
``node_selector`` (a label map), ``tolerations`` (a list of Kubernetes toleration objects),
``accelerator_type`` (the resource name, e.g. ``nvidia.com/gpu``) and ``gpus`` (its limit).
"""

from kfp import dsl, kubernetes

from .components import (
    evaluate_model,
    export_model,
    ingest_dataset,
    publish_snapshot,
    train_model,
    validate_dataset,
)

INGESTION = "slipway-dataset-ingestion"
TRAINING = "slipway-train-evaluate-export"


@dsl.pipeline(
    name=INGESTION, description="Snapshot, validate and publish an immutable dataset version."
)
def dataset_ingestion(
    source_uri: str,
    store_uri: str,
    name: str,
    version: str,
    rules_json: str = "{}",
    allow_identical: bool = False,
) -> str:
    ingest = ingest_dataset(source_uri=source_uri)
    check = validate_dataset(dataset=ingest.outputs["dataset"], rules_json=rules_json)
    publish = publish_snapshot(
        dataset=ingest.outputs["dataset"],
        report=check.outputs["report"],
        store_uri=store_uri,
        name=name,
        version=version,
        allow_identical=allow_identical,
    )
    return publish.outputs["digest"]


@dsl.pipeline(
    name=TRAINING, description="Train on a dataset version, gate on held-out quality, export ONNX."
)
def train_evaluate_export(
    dataset_uri: str,
    dataset_digest: str,
    output_uri: str = "",
    model_type: str = "mlp",
    hyperparameters_json: str = "{}",
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 0.003,
    optimizer: str = "adam",
    seed: int = 0,
    checkpoint_uri: str = "",
    gate_metric: str = "accuracy",
    min_value: float = 0.9,
    node_selector: dict = {},  # noqa: B006 (kfp pipeline parameters take literal defaults)
    tolerations: list = [],  # noqa: B006
    accelerator_type: str = "nvidia.com/gpu",
    gpus: int = 0,
) -> dsl.Model:
    train = train_model(
        dataset_uri=dataset_uri,
        dataset_digest=dataset_digest,
        model_type=model_type,
        hyperparameters_json=hyperparameters_json,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimizer=optimizer,
        seed=seed,
        checkpoint_uri=checkpoint_uri,
    )
    kubernetes.add_node_selector_json(train, node_selector)
    kubernetes.add_toleration_json(train, tolerations)
    train.set_accelerator_type(accelerator_type).set_accelerator_limit(gpus)
    evaluate = evaluate_model(
        model=train.outputs["model"], gate_metric=gate_metric, min_value=min_value
    )
    export = export_model(
        model=train.outputs["model"], gate_value=evaluate.outputs["Output"], output_uri=output_uri
    )
    return export.outputs["onnx_model"]


PIPELINES = {INGESTION: dataset_ingestion, TRAINING: train_evaluate_export}
