"""Immutable, content-addressed dataset snapshots.

A snapshot version lives at ``<store>/<name>/<version>/``::

    manifest.json        canonical JSON: format, rows, schema, each data file's sha256/rows/bytes
    data/part-00000.parquet ...
    provenance.json      where the data came from and when (not part of the digest)
    validation.json      the validation report, when rules were given (not part of the digest)

The dataset digest is ``sha256:`` + the hex sha256 of ``manifest.json``'s bytes. The manifest holds
nothing but the data's description (no name, version, source or time), and the Parquet files are
written with fixed options from a single-chunk table, so the same rows always give the same digest
and any changed value gives a new one. ``manifest.json`` is written last: a version exists once
its manifest does, and writing to an existing version is refused.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import storage
from .sources import column_dtype, column_shape

FORMAT = "slipway.dataset/v1"
MANIFEST = "manifest.json"
PROVENANCE = "provenance.json"
VALIDATION = "validation.json"
ROWS_PER_FILE = 1_000_000


class SnapshotError(ValueError):
    """A snapshot is missing, corrupt, or does not match the digest it was asked for."""


class SnapshotExistsError(SnapshotError):
    """The version already exists; snapshots are immutable."""


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot: its table, manifest and digest."""

    uri: str
    digest: str
    manifest: dict[str, Any]
    table: pa.Table


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(manifest_bytes: bytes) -> str:
    return "sha256:" + storage.sha256_bytes(manifest_bytes)


def schema_of(table: pa.Table) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "dtype": column_dtype(f),
            "shape": column_shape(f),
            "nullable": bool(f.nullable),
        }
        for f in table.schema
    ]


def _normalise(table: pa.Table) -> pa.Table:
    """Canonical form, so the bytes depend on the data only: no schema-level metadata,
    one chunk, and list children named ``item`` (Parquet reads them back as ``element``)."""
    fields = []
    for f in table.schema:
        if pa.types.is_fixed_size_list(f.type):
            child = pa.field("item", f.type.value_type, nullable=f.type.value_field.nullable)
            f = pa.field(
                f.name, pa.list_(child, f.type.list_size), nullable=f.nullable, metadata=f.metadata
            )
        fields.append(f)
    return table.replace_schema_metadata(None).cast(pa.schema(fields)).combine_chunks()


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=3,
        row_group_size=65_536,
        use_dictionary=False,
        write_statistics=True,
        store_schema=True,
    )
    return sink.getvalue()


def build(table: pa.Table, rows_per_file: int = ROWS_PER_FILE) -> tuple[bytes, dict[str, bytes]]:
    """Serialise a table into ``(manifest bytes, {relative path: file bytes})`` without writing."""
    table = _normalise(table)
    files: dict[str, bytes] = {}
    entries = []
    for index, start in enumerate(range(0, max(table.num_rows, 1), rows_per_file)):
        part = table.slice(start, rows_per_file)
        data = _parquet_bytes(part)
        path = f"data/part-{index:05d}.parquet"
        files[path] = data
        entries.append(
            {
                "path": path,
                "sha256": storage.sha256_bytes(data),
                "rows": part.num_rows,
                "bytes": len(data),
            }
        )
    manifest = {
        "format": FORMAT,
        "rows": table.num_rows,
        "schema": schema_of(table),
        "files": entries,
    }
    return canonical_json(manifest), files


def compute_digest(table: pa.Table) -> str:
    """The digest a table would get as a snapshot, without writing it."""
    return digest_of(build(table)[0])


def version_uri(store: str, name: str, version: str) -> str:
    for label, value in (("name", name), ("version", version)):
        if not value or "/" in value or value.startswith("."):
            raise SnapshotError(
                f"invalid snapshot {label} {value!r}: non-empty, no '/', not starting with '.'"
            )
    return storage.join(store, name, version)


def existing_digest(uri: str) -> str | None:
    """The digest of the snapshot at ``uri``, or None when no version is committed there."""
    manifest_uri = storage.join(uri, MANIFEST)
    if not storage.exists(manifest_uri):
        return None
    return digest_of(storage.read_bytes(manifest_uri))


def write(
    table: pa.Table,
    store: str,
    name: str,
    version: str,
    *,
    source: str = "",
    validation: dict[str, Any] | None = None,
    allow_identical: bool = False,
) -> tuple[str, str]:
    """Write a new snapshot version at ``<store>/<name>/<version>`` and return ``(uri, digest)``.

    Refuses (``SnapshotExistsError``) when the version exists; with ``allow_identical`` an existing
    version holding exactly the same data is returned instead, so a retried ingestion is idempotent.
    """
    uri = version_uri(store, name, version)
    return uri, write_at(
        table, uri, source=source, validation=validation, allow_identical=allow_identical
    )


def write_at(
    table: pa.Table,
    uri: str,
    *,
    source: str = "",
    validation: dict[str, Any] | None = None,
    allow_identical: bool = False,
) -> str:
    """Write a snapshot into the folder ``uri`` (same rules as ``write``) and return its digest."""
    manifest_bytes, files = build(table)
    digest = digest_of(manifest_bytes)
    found = existing_digest(uri)
    if found is not None:
        if allow_identical and found == digest:
            return digest
        raise SnapshotExistsError(
            f"snapshot {uri} already exists with digest {found}; snapshots are immutable, "
            "write a new version instead"
        )
    extras = {
        PROVENANCE: canonical_json(
            {"source": source, "digest": digest, "createdAt": int(time.time())}
        )
    }
    if validation is not None:
        extras[VALIDATION] = canonical_json(validation)
    if storage.is_local(uri):
        _write_local(uri, manifest_bytes, {**files, **extras})
    else:
        for path, data in {**files, **extras}.items():
            storage.write_bytes(storage.join(uri, path), data)
        storage.write_bytes(storage.join(uri, MANIFEST), manifest_bytes)
    return digest


def copy(
    source_uri: str,
    target_uri: str,
    expected_digest: str | None = None,
    allow_identical: bool = False,
    validation: dict[str, Any] | None = None,
) -> str:
    """Publish a verified snapshot to another location (e.g. from a pipeline artifact to the store),
    keeping its provenance and its validation report (or the one given)."""
    snap = load(source_uri, expected_digest)
    provenance_uri = storage.join(source_uri, PROVENANCE)
    source = (
        json.loads(storage.read_bytes(provenance_uri)).get("source", "")
        if storage.exists(provenance_uri)
        else ""
    )
    validation_uri = storage.join(source_uri, VALIDATION)
    if validation is None and storage.exists(validation_uri):
        validation = json.loads(storage.read_bytes(validation_uri))
    digest = write_at(
        snap.table,
        target_uri,
        source=source,
        validation=validation,
        allow_identical=allow_identical,
    )
    if digest != snap.digest:
        raise SnapshotError(
            f"copy of {source_uri} to {target_uri} has digest {digest}, expected {snap.digest}"
        )
    return digest


def _write_local(uri: str, manifest: bytes, files: dict[str, bytes]) -> None:
    """Write into a hidden staging folder, then rename it into place (atomic; fails if taken)."""
    path = storage.filesystem(uri)[1]
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(path)}.staging-{uuid.uuid4().hex[:8]}")
    try:
        for rel, data in {**files, MANIFEST: manifest}.items():
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(data)
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)
        try:
            os.rename(staging, path)
        except OSError as err:
            raise SnapshotExistsError(
                f"snapshot {uri} already exists; snapshots are immutable, "
                "write a new version instead"
            ) from err
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)


def load(uri: str, expected_digest: str | None = None) -> Snapshot:
    """Read a snapshot, verifying the manifest digest (against ``expected_digest`` when given)
    and every data file's sha256 before any row is returned."""
    manifest_uri = storage.join(uri, MANIFEST)
    if not storage.exists(manifest_uri):
        raise SnapshotError(f"no snapshot at {uri!r}: {MANIFEST} is missing")
    manifest_bytes = storage.read_bytes(manifest_uri)
    digest = digest_of(manifest_bytes)
    if expected_digest and expected_digest != digest:
        raise SnapshotError(
            f"dataset digest mismatch for {uri!r}: expected {expected_digest}, found {digest}; "
            "refusing to train on data other than the version asked for"
        )
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"unsupported snapshot format {manifest.get('format')!r} at {uri!r}")
    tables = []
    for entry in manifest["files"]:
        data = storage.read_bytes(storage.join(uri, entry["path"]))
        actual = storage.sha256_bytes(data)
        if actual != entry["sha256"]:
            raise SnapshotError(
                f"data file {entry['path']} of {uri!r} is corrupt: "
                f"sha256 {actual} != manifest {entry['sha256']}"
            )
        tables.append(pq.read_table(io.BytesIO(data)))
    table = _normalise(pa.concat_tables(tables)) if tables else pa.table({})
    if table.num_rows != manifest["rows"]:
        raise SnapshotError(
            f"snapshot {uri!r} has {table.num_rows} rows, manifest says {manifest['rows']}"
        )
    return Snapshot(uri=uri, digest=digest, manifest=manifest, table=table)
