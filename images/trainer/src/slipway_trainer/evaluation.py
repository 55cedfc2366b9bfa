"""Held-out evaluation: loss, accuracy and per-class precision/recall of a classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@torch.no_grad()
def logits_of(
    model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 1024
) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode (restores the previous mode), on the CPU."""
    was_training = model.training
    model.eval()
    outs = [
        model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)
    ]
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0)


def classification_metrics(
    logits: torch.Tensor, y: torch.Tensor, classes: list[Any]
) -> dict[str, Any]:
    """Loss, accuracy, per-class precision/recall/support and their macro averages."""
    loss = F.cross_entropy(logits, y).item() if len(y) else float("nan")
    pred = logits.argmax(dim=1)
    per_class: dict[str, dict[str, float]] = {}
    precisions, recalls = [], []
    for index, label in enumerate(classes):
        predicted = int((pred == index).sum())
        actual = int((y == index).sum())
        hit = int(((pred == index) & (y == index)).sum())
        precision = hit / predicted if predicted else 0.0
        recall = hit / actual if actual else 0.0
        precisions.append(precision)
        recalls.append(recall)
        per_class[str(label)] = {"precision": precision, "recall": recall, "support": actual}
    return {
        "loss": loss,
        "accuracy": float((pred == y).float().mean()) if len(y) else 0.0,
        "macroPrecision": sum(precisions) / len(precisions) if precisions else 0.0,
        "macroRecall": sum(recalls) / len(recalls) if recalls else 0.0,
        "samples": len(y),
        "perClass": per_class,
    }


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: list[Any], device: torch.device
) -> dict[str, Any]:
    return classification_metrics(logits_of(model, x, device), y, classes)
