"""Dataset sources: read raw data from a URI into a pyarrow Table.

Supported URIs:

* ``builtin://digits`` and ``builtin://iris``: scikit-learn's bundled data (no download). Digits
  becomes an ``image`` column of 1x8x8 float32 pixels and an int64 ``label``; iris becomes four
  float32 measurement columns and an int64 ``label``.
* a local or PVC path, ``file://``, ``s3://``, ``gs://``, ``https://`` (anything fsspec opens),
  naming a ``.parquet``/``.pq``, ``.csv``, ``.jsonl`` or ``.npz`` file, or a directory of Parquet
  files (read in name order).

Tensor-valued columns are fixed-size lists whose field metadata carries ``shape`` as JSON, e.g.
``[1, 8, 8]``; it survives the Parquet round trip and lands in the snapshot manifest.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from . import storage

SHAPE_KEY = b"shape"


class SourceError(ValueError):
    """The source URI cannot be read (unknown scheme, format or builtin name)."""


def tensor_column(name: str, values: np.ndarray) -> tuple[pa.Field, pa.Array]:
    """Build a fixed-size-list column from an (N, *shape) array, recording the shape."""
    rows = values.shape[0]
    shape = [int(d) for d in values.shape[1:]]
    flat = np.ascontiguousarray(values.reshape(rows, -1))
    width = flat.shape[1]
    array = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), width)
    field = pa.field(
        name, array.type, nullable=False, metadata={SHAPE_KEY: json.dumps(shape).encode()}
    )
    return field, array


def table_from_arrays(columns: dict[str, np.ndarray]) -> pa.Table:
    """Make a table from numpy arrays: 1-D arrays become scalar columns, the rest tensor columns."""
    fields, arrays = [], []
    for name, values in columns.items():
        if values.ndim == 1:
            array = pa.array(values)
            fields.append(pa.field(name, array.type))
        else:
            field, array = tensor_column(name, values)
            fields.append(field)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _digits() -> pa.Table:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32).reshape(-1, 1, 8, 8)
    return table_from_arrays({"image": images, "label": bunch.target.astype(np.int64)})


def _iris() -> pa.Table:
    from sklearn.datasets import load_iris

    bunch = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    columns = {name: bunch.data[:, i].astype(np.float32) for i, name in enumerate(names)}
    columns["label"] = bunch.target.astype(np.int64)
    return table_from_arrays(columns)


BUILTINS: dict[str, Callable[[], pa.Table]] = {"digits": _digits, "iris": _iris}


def _read_npz(data: bytes) -> pa.Table:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        columns = {key: archive[key] for key in archive.files}
    lengths = {key: value.shape[0] if value.ndim else 0 for key, value in columns.items()}
    if len(set(lengths.values())) != 1:
        raise SourceError(f"npz arrays must share their first dimension, got {lengths}")
    return table_from_arrays(columns)


def _read_file(uri: str) -> pa.Table:
    lower = uri.lower()
    data = storage.read_bytes(uri)
    if lower.endswith((".parquet", ".pq")):
        return pq.read_table(io.BytesIO(data))
    if lower.endswith(".csv"):
        return pa_csv.read_csv(io.BytesIO(data))
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return pa_json.read_json(io.BytesIO(data))
    if lower.endswith(".npz"):
        return _read_npz(data)
    raise SourceError(f"unsupported file type for {uri!r}: use .parquet, .csv, .jsonl or .npz")


def load_source(uri: str) -> pa.Table:
    """Read a source URI into a pyarrow Table (see the module docstring for what is accepted)."""
    if uri.startswith("builtin://"):
        name = uri[len("builtin://") :]
        if name not in BUILTINS:
            raise SourceError(
                f"unknown builtin dataset {name!r}; valid: {', '.join(sorted(BUILTINS))}"
            )
        return BUILTINS[name]()
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise SourceError(f"source {uri!r} does not exist")
    if fs.isdir(path):
        parts = [p for p in storage.listdir(uri) if p.lower().endswith((".parquet", ".pq"))]
        if not parts:
            raise SourceError(f"directory {uri!r} holds no .parquet files")
        tables = [_read_file(storage.join(uri, p)) for p in parts]
        return pa.concat_tables(tables)
    if "://" in uri and not posixpath.splitext(path)[1]:
        raise SourceError(f"cannot tell the format of {uri!r}: name a file with an extension")
    return _read_file(uri)


def column_shape(field: pa.Field) -> list[int]:
    """The per-row shape of a column: [] for scalars, the recorded shape for tensor columns."""
    if pa.types.is_fixed_size_list(field.type):
        meta = field.metadata or {}
        if SHAPE_KEY in meta:
            return [int(d) for d in json.loads(meta[SHAPE_KEY])]
        return [field.type.list_size]
    return []


def column_dtype(field: pa.Field) -> str:
    """A numpy-style dtype name for a column (the element type for tensor columns)."""
    arrow_type = field.type.value_type if pa.types.is_fixed_size_list(field.type) else field.type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    try:
        return str(np.dtype(arrow_type.to_pandas_dtype()))
    except (NotImplementedError, TypeError):
        return str(arrow_type)
