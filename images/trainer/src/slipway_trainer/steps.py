"""Job stages shared by the trainer CLI and the Kubeflow components.

``prepare`` verifies the snapshot and splits it; ``save_trained``/``load_trained`` move a trained
model between pipeline steps as a folder (``model.pt`` + ``train.json`` with the full config,
classes and input shape); ``evaluate_trained`` scores it on the held-out split; ``publish`` exports
ONNX, runs the parity check and writes ``model.onnx``, ``metadata.json`` and ``metrics.json``.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from . import metadata, storage
from .config import TrainConfig
from .data import Split, split
from .evaluation import evaluate
from .export import describe, export_onnx, parity_check
from .models import build_model
from .snapshot import Snapshot, load

TRAIN_INFO = "train.json"


def write_json(uri: str, value: dict[str, Any]) -> None:
    storage.write_bytes(uri, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def prepare(cfg: TrainConfig) -> tuple[Snapshot, Split]:
    """Load the snapshot (verifying ``cfg.dataset_digest`` when set) and split it."""
    snap = load(cfg.dataset_uri, cfg.dataset_digest or None)
    return snap, split(snap.table, cfg.label_column, cfg.val_fraction, cfg.split_seed)


def save_trained(
    folder: str, cfg: TrainConfig, digest: str, data: Split, model: nn.Module, extra: dict[str, Any]
) -> None:
    buffer = io.BytesIO()
    torch.save(model.to("cpu").state_dict(), buffer)
    storage.write_bytes(storage.join(folder, "model.pt"), buffer.getvalue())
    info = {
        "config": asdict(cfg),
        "datasetDigest": digest,
        "classes": data.classes,
        "inputShape": data.input_shape,
        **extra,
    }
    write_json(storage.join(folder, TRAIN_INFO), info)


def load_trained(folder: str) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild the model saved by ``save_trained`` (weights and standardisation buffers)."""
    info = json.loads(storage.read_bytes(storage.join(folder, TRAIN_INFO)))
    cfg = TrainConfig(**info["config"])
    shape = info["inputShape"]
    model = build_model(
        cfg.model_type,
        cfg.hyperparameters,
        shape,
        len(info["classes"]),
        torch.zeros(shape),
        torch.ones(shape),
    )
    state = torch.load(
        io.BytesIO(storage.read_bytes(storage.join(folder, "model.pt"))),
        map_location="cpu",
        weights_only=True,
    )
    model.load_state_dict(state)
    return model.eval(), cfg, info


def evaluate_trained(folder: str) -> dict[str, Any]:
    """Held-out metrics of a saved model on its own (re-verified) dataset split."""
    model, cfg, info = load_trained(folder)
    cfg.dataset_digest = info["datasetDigest"]
    _, data = prepare(cfg)
    return evaluate(model, data.x_val, data.y_val, data.classes, torch.device("cpu"))


def publish(
    cfg: TrainConfig,
    model: nn.Module,
    data: Split,
    digest: str,
    history: list[dict[str, Any]],
    throughput: dict[str, Any],
    output_uri: str,
    world_size: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate, export, check parity (``ParityError``), write the outputs; return metadata."""
    model = model.to("cpu").eval()
    final = evaluate(model, data.x_val, data.y_val, data.classes, torch.device("cpu"))
    onnx_bytes = export_onnx(model, data.input_shape, cfg.opset)
    parity = parity_check(model, onnx_bytes, data.x_val, cfg.parity_atol, cfg.parity_rtol)
    metrics = {"train": history[-1] if history else {}, "validation": final}
    write_json(
        storage.join(output_uri, "metrics.json"),
        {"epochs": history, "validation": final, "parity": parity, "throughput": throughput},
    )
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    storage.write_bytes(storage.join(output_uri, "model.pt"), buffer.getvalue())
    storage.write_bytes(storage.join(output_uri, "model.onnx"), onnx_bytes)
    meta = metadata.build(
        cfg,
        digest,
        storage.sha256_bytes(onnx_bytes),
        describe(onnx_bytes),
        data.classes,
        metrics,
        parity,
        world_size,
        device,
    )
    write_json(storage.join(output_uri, "metadata.json"), meta)
    return meta
