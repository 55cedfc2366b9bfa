"""Model zoo: an MLP for any feature vector and a small CNN for image-shaped (C, H, W) data.

Each model type declares its hyperparameters (name -> type and default) in ``HYPERPARAMETERS``;
``resolve_hyperparameters`` coerces strings from the command line or environment, fills defaults
and rejects unknown names with the list of valid ones. Every model starts with a ``Standardize``
layer holding the training set's per-feature mean and std as buffers, so the exported ONNX model
takes raw features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class HyperparameterError(ValueError):
    """An unknown hyperparameter name or a value of the wrong type."""


@dataclass(frozen=True)
class Param:
    kind: str  # "int", "float", "str", "ints"
    default: Any
    help: str


HYPERPARAMETERS: dict[str, dict[str, Param]] = {
    "mlp": {
        "hidden": Param("ints", [128, 64], "hidden layer widths, comma separated"),
        "dropout": Param("float", 0.0, "dropout probability after each hidden layer"),
        "activation": Param("str", "relu", "relu, tanh or gelu"),
    },
    "cnn": {
        "channels": Param(
            "ints", [16, 32], "output channels of each conv block (conv, relu, 2x2 max-pool)"
        ),
        "kernel_size": Param("int", 3, "convolution kernel size (odd)"),
        "hidden": Param("int", 64, "width of the dense layer after the conv blocks"),
        "dropout": Param("float", 0.0, "dropout probability before the classifier"),
    },
}

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def _coerce(model_type: str, name: str, param: Param, value: Any) -> Any:
    try:
        if param.kind == "ints":
            if isinstance(value, str):
                return [int(v) for v in value.replace(" ", "").split(",") if v]
            if isinstance(value, int):
                return [value]
            return [int(v) for v in value]
        if param.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if param.kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError) as err:
        raise HyperparameterError(
            f"hyperparameter {name!r} of model {model_type!r} must be {param.kind}, got {value!r}"
        ) from err


def resolve_hyperparameters(model_type: str, given: dict[str, Any]) -> dict[str, Any]:
    """Validated hyperparameters with defaults filled in (sorted by name)."""
    if model_type not in HYPERPARAMETERS:
        raise HyperparameterError(
            f"unknown model type {model_type!r}; valid: {', '.join(sorted(HYPERPARAMETERS))}"
        )
    spec = HYPERPARAMETERS[model_type]
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} "
            f"for model {model_type!r}; valid: {', '.join(sorted(spec))}"
        )
    resolved = {
        name: _coerce(model_type, name, p, given.get(name, p.default)) for name, p in spec.items()
    }
    if model_type == "mlp" and resolved["activation"] not in ACTIVATIONS:
        raise HyperparameterError(
            f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, "
            f"got {resolved['activation']!r}"
        )
    if not 0.0 <= resolved["dropout"] < 1.0:
        raise HyperparameterError(f"dropout must be in [0, 1), got {resolved['dropout']}")
    return dict(sorted(resolved.items()))


class Standardize(nn.Module):
    """(x - mean) / std with statistics from the training split, stored as buffers."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone().float())
        self.register_buffer("std", std.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MLP(nn.Module):
    def __init__(
        self,
        input_shape: list[int],
        classes: int,
        norm: Standardize,
        hidden: list[int],
        dropout: float,
        activation: str,
    ) -> None:
        super().__init__()
        width = 1
        for dim in input_shape:
            width *= dim
        layers: list[nn.Module] = [norm, nn.Flatten()]
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    def __init__(
        self,
        input_shape: list[int],
        classes: int,
        norm: Standardize,
        channels: list[int],
        kernel_size: int,
        hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise HyperparameterError(
                "model 'cnn' needs image-shaped features (C, H, W); "
                f"this dataset's are {input_shape}"
            )
        if kernel_size % 2 == 0:
            raise HyperparameterError(f"kernel_size must be odd, got {kernel_size}")
        blocks: list[nn.Module] = [norm]
        in_ch, height, width = input_shape
        for out_ch in channels:
            blocks += [nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            if height >= 2 and width >= 2:
                blocks.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(in_ch * height * width, hidden), nn.ReLU()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(
    model_type: str,
    hyperparameters: dict[str, Any],
    input_shape: list[int],
    classes: int,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> nn.Module:
    """Construct a model; call after seeding torch so initial weights are reproducible."""
    hp = resolve_hyperparameters(model_type, hyperparameters)
    norm = Standardize(mean, std)
    if model_type == "mlp":
        return MLP(input_shape, classes, norm, hp["hidden"], hp["dropout"], hp["activation"])
    return CNN(
        input_shape, classes, norm, hp["channels"], hp["kernel_size"], hp["hidden"], hp["dropout"]
    )
