"""Trainer configuration from command-line arguments and ``SLIPWAY_*`` environment variables.

Every option ``--some-name`` also reads ``SLIPWAY_SOME_NAME``; the argument wins over the variable.
Hyperparameters of the chosen model come from ``--hparam NAME=VALUE`` (repeatable), from
``--hyperparameters '{"hidden": [64]}'`` / ``SLIPWAY_HYPERPARAMETERS``, or as plain extra options
(``--hidden=64,32``, the form a Katib trial template renders); unknown names are rejected with the
list of valid ones.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .models import HYPERPARAMETERS, HyperparameterError, resolve_hyperparameters

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class TrainConfig:
    dataset_uri: str
    output_uri: str
    dataset_digest: str = ""
    label_column: str = "label"
    model_type: str = "mlp"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    val_fraction: float = 0.2
    split_seed: int = 0
    checkpoint_uri: str = ""
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    device: str = "auto"
    num_threads: int = 0
    opset: int = 17
    parity_atol: float = 1e-4
    parity_rtol: float = 1e-3
    metrics_file: str = ""

    def __post_init__(self) -> None:
        self.hyperparameters = resolve_hyperparameters(self.model_type, self.hyperparameters)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch-size must be at least 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val-fraction must be in (0, 1), got {self.val_fraction}")
        if not self.checkpoint_uri:
            self.checkpoint_uri = self.output_uri.rstrip("/") + "/checkpoints"

    def training_parameters(self) -> dict[str, Any]:
        """Everything that shapes the trained weights (fingerprint and checkpoint key)."""
        keep = [
            "label_column",
            "model_type",
            "hyperparameters",
            "epochs",
            "batch_size",
            "learning_rate",
            "optimizer",
            "momentum",
            "weight_decay",
            "seed",
            "val_fraction",
            "split_seed",
        ]
        return {k: v for k, v in asdict(self).items() if k in keep}


def _env(name: str) -> str | None:
    return os.environ.get("SLIPWAY_" + name.upper().replace("-", "_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m slipway_trainer",
        allow_abbrev=False,
        description="Train a model on a dataset snapshot, export ONNX and write metadata.",
        epilog="model hyperparameters: "
        + "; ".join(
            f"{m}: {', '.join(f'{n} ({p.help}, default {p.default})' for n, p in s.items())}"
            for m, s in HYPERPARAMETERS.items()
        ),
    )
    defaults = TrainConfig.__dataclass_fields__
    options: list[tuple[str, type, str]] = [
        ("dataset-uri", str, "snapshot version URI (folder holding manifest.json)"),
        ("dataset-digest", str, "expected sha256:... digest, verified before training"),
        ("label-column", str, "label column name"),
        ("model-type", str, f"one of {', '.join(HYPERPARAMETERS)}"),
        ("hyperparameters", str, "JSON object of model hyperparameters"),
        ("epochs", int, "training epochs"),
        ("batch-size", int, "global batch size (split across DDP workers)"),
        ("learning-rate", float, "learning rate"),
        ("optimizer", str, f"one of {', '.join(OPTIMIZERS)}"),
        ("momentum", float, "SGD momentum"),
        ("weight-decay", float, "weight decay"),
        ("seed", int, "random seed (weights, shuffling)"),
        ("val-fraction", float, "held-out share of every class"),
        ("split-seed", int, "seed of the train/validation split"),
        ("output-uri", str, "where model.onnx, metadata.json and metrics.json go"),
        (
            "metrics-file",
            str,
            "also append each epoch's metrics as a JSON line here (Katib File collector)",
        ),
        ("checkpoint-uri", str, "checkpoint folder (default OUTPUT/checkpoints)"),
        ("checkpoint-every", int, "steps between checkpoints (0: only at the end of each epoch)"),
        ("keep-checkpoints", int, "checkpoints to keep"),
        ("device", str, "auto, cpu or cuda"),
        ("num-threads", int, "torch CPU threads (0: CPU limit / processes on the node)"),
        ("opset", int, "ONNX opset"),
        ("parity-atol", float, "absolute tolerance of the onnxruntime/torch parity check"),
        ("parity-rtol", float, "relative tolerance of the parity check"),
    ]
    for name, kind, text in options:
        attr = name.replace("-", "_")
        default = _env(name)
        if default is None and attr in defaults and attr != "hyperparameters":
            dflt = defaults[attr].default
            default = None if dflt is None or callable(dflt) else dflt
        flags = [f"--{name}"] + (["--lr"] if name == "learning-rate" else [])
        parser.add_argument(
            *flags,
            dest=attr,
            type=kind,
            default=default,
            help=f"{text} [env SLIPWAY_{attr.upper()}]",
        )
    parser.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="model hyperparameter (repeatable)",
    )
    parser.add_argument(
        "--print-fingerprint",
        action="store_true",
        help="print the run fingerprint as JSON and exit",
    )
    return parser


def _extra_hparams(extras: list[str]) -> dict[str, str]:
    """Turn leftover ``--name=value`` / ``--name value`` options into hyperparameters."""
    found: dict[str, str] = {}
    i = 0
    while i < len(extras):
        token = extras[i]
        if not token.startswith("--"):
            raise HyperparameterError(f"unexpected argument {token!r}")
        if "=" in token:
            key, value = token[2:].split("=", 1)
        elif i + 1 < len(extras) and not extras[i + 1].startswith("--"):
            key, value = token[2:], extras[i + 1]
            i += 1
        else:
            raise HyperparameterError(f"option {token!r} needs a value")
        found[key.replace("-", "_")] = value
        i += 1
    return found


def parse_config(argv: list[str] | None = None) -> tuple[TrainConfig, bool]:
    """Parse arguments and environment; returns ``(config, print_fingerprint)``."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    hparams: dict[str, Any] = {}
    raw = args.hyperparameters or _env("hyperparameters")
    if raw:
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise HyperparameterError("hyperparameters must be a JSON object")
        hparams.update(value)
    for item in args.hparam:
        if "=" not in item:
            raise HyperparameterError(f"--hparam needs NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        hparams[key.strip()] = value
    hparams.update(_extra_hparams(extras))
    values = {
        k: v
        for k, v in vars(args).items()
        if k not in ("hparam", "print_fingerprint", "hyperparameters")
    }
    for required in ("dataset_uri", "output_uri"):
        if not values.get(required):
            parser.error(
                f"--{required.replace('_', '-')} (or SLIPWAY_{required.upper()}) is required"
            )
    values = {k: v for k, v in values.items() if v is not None}
    return TrainConfig(hyperparameters=hparams, **values), bool(args.print_fingerprint)
