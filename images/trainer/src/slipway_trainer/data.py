"""Turn a snapshot table into tensors and a deterministic, stratified train/validation split.

Features are every column but the label. A single tensor column keeps its recorded shape (so the
CNN sees C x H x W); otherwise the numeric columns are flattened and concatenated in column order.
Labels map to class indices in sorted label order. The split depends only on ``split_seed`` and
``val_fraction`` (not on the training seed), so every trial of a sweep is scored on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .sources import column_shape


class DataError(ValueError):
    """The table cannot be used for training as configured."""


@dataclass
class Split:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: list[Any]
    input_shape: list[int]
    feature_columns: list[str]

    def feature_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature mean and std of the training rows (std 1 where a feature is constant)."""
        mean = self.x_train.mean(dim=0)
        std = self.x_train.std(dim=0, unbiased=False)
        std = torch.where(std < 1e-6, torch.ones_like(std), std)
        return mean, std


def _column_matrix(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(column), column.type.list_size)
    if not (
        pa.types.is_integer(column.type)
        or pa.types.is_floating(column.type)
        or pa.types.is_boolean(column.type)
    ):
        raise DataError(
            f"feature column {name!r} has type {column.type}; only numeric features are supported"
        )
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, 1)


def tensors(
    table: pa.Table, label_column: str
) -> tuple[np.ndarray, np.ndarray, list[Any], list[int], list[str]]:
    """``(features, label indices, classes, per-row input shape, feature columns)``."""
    if label_column not in table.column_names:
        raise DataError(
            f"label column {label_column!r} not in dataset columns {table.column_names}"
        )
    features = [c for c in table.column_names if c != label_column]
    if not features:
        raise DataError("the dataset has no feature columns")
    matrices = [_column_matrix(table, name) for name in features]
    x = np.concatenate(matrices, axis=1) if len(matrices) > 1 else matrices[0]
    if np.isnan(x).any():
        raise DataError(
            "features contain NaN; add a maxNullFraction rule at ingestion or clean the source"
        )
    shape = column_shape(table.schema.field(features[0])) if len(features) == 1 else [x.shape[1]]
    shape = shape or [1]
    labels = table.column(label_column).to_pylist()
    if any(v is None for v in labels):
        raise DataError(f"label column {label_column!r} has nulls")
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    y = np.asarray([index[v] for v in labels], dtype=np.int64)
    return x.reshape(len(x), *shape), y, classes, [int(d) for d in shape], features


def split(table: pa.Table, label_column: str, val_fraction: float, split_seed: int) -> Split:
    """Stratified split: each class gives round(share * count) rows (at least 1) to validation."""
    x, y, classes, shape, features = tensors(table, label_column)
    rng = np.random.default_rng(split_seed)
    val_idx: list[np.ndarray] = []
    for cls in range(len(classes)):
        members = np.flatnonzero(y == cls)
        members = members[rng.permutation(len(members))]
        take = (
            min(max(1, round(val_fraction * len(members))), len(members) - 1)
            if len(members) > 1
            else 0
        )
        val_idx.append(members[:take])
    val = np.sort(np.concatenate(val_idx)) if val_idx else np.zeros(0, np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[val] = False
    train = np.flatnonzero(mask)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"cannot split {len(y)} rows into non-empty train and validation sets")
    return Split(
        x_train=torch.from_numpy(x[train]),
        y_train=torch.from_numpy(y[train]),
        x_val=torch.from_numpy(x[val]),
        y_val=torch.from_numpy(y[val]),
        classes=classes,
        input_shape=shape,
        feature_columns=features,
    )
