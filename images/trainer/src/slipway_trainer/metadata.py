"""The run fingerprint and ``metadata.json``.

The fingerprint is ``sha256:`` + sha256 of the canonical JSON of the dataset digest, the trainer's
code digest (all ``.py`` files of this package) and version, and the training parameters (model
type, hyperparameters, epochs, batch size, optimizer, learning rate, seed, split). Two runs with
the same fingerprint train the same model, so the operator may skip the second one;
``python -m slipway_trainer --print-fingerprint ...`` prints it without training.
"""

from __future__ import annotations

import hashlib
import os
import platform
from typing import Any

import torch

from . import __version__
from .config import TrainConfig
from .snapshot import canonical_json

SCHEMA_VERSION = 1


def code_digest() -> str:
    """sha256 over this package's Python sources (relative name and bytes, in name order)."""
    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(root)):
        if name.endswith(".py"):
            with open(os.path.join(root, name), "rb") as handle:
                data = handle.read()
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\n")
    return "sha256:" + digest.hexdigest()


def fingerprint(cfg: TrainConfig, dataset_digest: str) -> dict[str, Any]:
    inputs = {
        "datasetDigest": dataset_digest,
        "codeDigest": code_digest(),
        "trainerVersion": __version__,
        "parameters": cfg.training_parameters(),
    }
    return {"fingerprint": "sha256:" + hashlib.sha256(canonical_json(inputs)).hexdigest(), **inputs}


def build(
    cfg: TrainConfig,
    dataset_digest: str,
    onnx_sha256: str,
    signature: dict[str, Any],
    classes: list[Any],
    metrics: dict[str, Any],
    parity: dict[str, Any],
    world_size: int,
    device: str,
) -> dict[str, Any]:
    """The ``metadata.json`` document written next to ``model.onnx``."""
    fp = fingerprint(cfg, dataset_digest)
    params = cfg.training_parameters()
    return {
        "schemaVersion": SCHEMA_VERSION,
        "fingerprint": fp["fingerprint"],
        "model": {
            "file": "model.onnx",
            "format": "onnx",
            "sha256": onnx_sha256,
            "opset": signature["opset"],
            "inputs": signature["inputs"],
            "outputs": signature["outputs"],
            "classes": classes,
        },
        "dataset": {
            "uri": cfg.dataset_uri,
            "digest": dataset_digest,
            "labelColumn": cfg.label_column,
        },
        "modelType": cfg.model_type,
        "hyperparameters": params["hyperparameters"],
        "training": {
            "epochs": cfg.epochs,
            "batchSize": cfg.batch_size,
            "learningRate": cfg.learning_rate,
            "optimizer": cfg.optimizer,
            "momentum": cfg.momentum,
            "weightDecay": cfg.weight_decay,
            "seed": cfg.seed,
            "valFraction": cfg.val_fraction,
            "splitSeed": cfg.split_seed,
            "worldSize": world_size,
            "device": device,
        },
        "metrics": metrics,
        "parity": parity,
        "trainer": {
            "version": __version__,
            "codeDigest": fp["codeDigest"],
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
