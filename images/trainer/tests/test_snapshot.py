"""Snapshots: digests are content addresses, versions are immutable, corruption is caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slipway_trainer import snapshot
from slipway_trainer.dataset import ingest, main
from slipway_trainer.sources import SourceError, load_source, table_from_arrays


def test_same_data_gives_same_digest_and_changed_row_a_new_one(tmp_path: Path) -> None:
    first = ingest("builtin://digits", str(tmp_path / "a"), "digits", "v1")
    second = ingest("builtin://digits", str(tmp_path / "b"), "digits", "v7")
    assert first.digest == second.digest
    assert first.digest.startswith("sha256:") and len(first.digest) == 71

    table = load_source("builtin://digits")
    labels = table.column("label").to_numpy().copy()
    labels[100] = (labels[100] + 1) % 10
    changed = table.set_column(
        table.schema.get_field_index("label"), table.schema.field("label"), pa.array(labels)
    )
    uri, digest = snapshot.write(changed, str(tmp_path / "a"), "digits", "v2")
    assert digest != first.digest
    assert snapshot.load(uri).table.column("label").to_pylist()[100] == labels[100]


def test_changed_row_in_a_local_csv_source_changes_the_digest(tmp_path: Path) -> None:
    rows = ["x,y,label"] + [f"{i},{i * 0.5},{i % 2}" for i in range(20)]
    source = tmp_path / "data.csv"
    source.write_text("\n".join(rows) + "\n")
    before = ingest(str(source), str(tmp_path / "store"), "csv", "v1").digest
    again = ingest(f"file://{source}", str(tmp_path / "store2"), "csv", "v1").digest
    rows[5] = "4,99.0,0"
    source.write_text("\n".join(rows) + "\n")
    after = ingest(str(source), str(tmp_path / "store"), "csv", "v2").digest
    assert before == again
    assert after != before


def test_writing_to_an_existing_version_is_refused(tmp_path: Path) -> None:
    table = load_source("builtin://iris")
    uri, digest = snapshot.write(table, str(tmp_path), "iris", "v1")
    with pytest.raises(snapshot.SnapshotExistsError, match=r"already exists.*immutable"):
        snapshot.write(table, str(tmp_path), "iris", "v1")
    assert snapshot.write(table, str(tmp_path), "iris", "v1", allow_identical=True) == (uri, digest)
    smaller = table.slice(0, 100)
    with pytest.raises(snapshot.SnapshotExistsError):
        snapshot.write(smaller, str(tmp_path), "iris", "v1", allow_identical=True)
    assert snapshot.load(uri).table.num_rows == 150


def test_manifest_describes_files_rows_and_schema(tmp_path: Path) -> None:
    uri, digest = snapshot.write(load_source("builtin://digits"), str(tmp_path), "digits", "v1")
    manifest_bytes = (Path(uri) / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert snapshot.digest_of(manifest_bytes) == digest
    assert manifest["rows"] == 1797
    assert manifest["schema"] == [
        {"name": "image", "dtype": "float32", "shape": [1, 8, 8], "nullable": False},
        {"name": "label", "dtype": "int64", "shape": [], "nullable": True},
    ]
    (entry,) = manifest["files"]
    assert entry["rows"] == 1797
    assert snapshot.storage.sha256_file(str(Path(uri) / entry["path"])) == entry["sha256"]
    assert json.loads((Path(uri) / "provenance.json").read_text())["digest"] == digest


def test_corrupt_file_and_wrong_digest_are_rejected(tmp_path: Path) -> None:
    uri, digest = snapshot.write(load_source("builtin://iris"), str(tmp_path), "iris", "v1")
    with pytest.raises(snapshot.SnapshotError, match=r"digest mismatch.*expected sha256:beef"):
        snapshot.load(uri, "sha256:beef")
    assert snapshot.load(uri, digest).digest == digest
    part = Path(uri) / "data" / "part-00000.parquet"
    raw = bytearray(part.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    part.write_bytes(bytes(raw))
    with pytest.raises(snapshot.SnapshotError, match="corrupt"):
        snapshot.load(uri, digest)


def test_sources_npz_parquet_dir_jsonl_and_errors(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.savez(tmp_path / "d.npz", image=images, label=np.array([0, 1]))
    table = load_source(str(tmp_path / "d.npz"))
    assert snapshot.schema_of(table)[0] == {
        "name": "image",
        "dtype": "float32",
        "shape": [3, 4, 5],
        "nullable": False,
    }

    parts = tmp_path / "parts"
    parts.mkdir()
    base = table_from_arrays({"x": np.arange(6, dtype=np.float64), "label": np.arange(6) % 2})
    pq.write_table(base.slice(0, 3), parts / "a.parquet")
    pq.write_table(base.slice(3, 3), parts / "b.parquet")
    assert load_source(f"file://{parts}").column("x").to_pylist() == [0, 1, 2, 3, 4, 5]

    (tmp_path / "d.jsonl").write_text('{"x": 1.5, "label": "a"}\n{"x": 2.5, "label": "b"}\n')
    assert load_source(str(tmp_path / "d.jsonl")).num_rows == 2

    with pytest.raises(SourceError, match="valid: digits, iris"):
        load_source("builtin://mnist")
    with pytest.raises(SourceError, match="does not exist"):
        load_source(str(tmp_path / "missing.csv"))


def test_cli_ingest_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path)
    args = [
        "ingest",
        "--source",
        "builtin://iris",
        "--name",
        "iris",
        "--version",
        "v1",
        "--store",
        store,
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert main(["verify", "--uri", out["uri"], "--digest", out["digest"]]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 150
    assert main(args) == 1
    assert "immutable" in capsys.readouterr().err


def test_fsspec_store_and_copy_keep_the_digest(tmp_path: Path) -> None:
    """A non-local fsspec filesystem (memory://) takes the object-store code path end to end."""
    table = load_source("builtin://digits")
    uri, digest = snapshot.write(table, "memory://slipway-test-store", "digits", "v1")
    assert uri == "memory://slipway-test-store/digits/v1"
    loaded = snapshot.load(uri, digest)
    assert loaded.table.num_rows == 1797
    with pytest.raises(snapshot.SnapshotExistsError):
        snapshot.write(table, "memory://slipway-test-store", "digits", "v1")
    copied = snapshot.copy(uri, str(tmp_path / "digits" / "v1"), digest)
    assert copied == digest == snapshot.compute_digest(loaded.table)
    assert (
        ingest(f"{uri}/data/part-00000.parquet", str(tmp_path), "from-memory", "v1").digest
        == digest
    )
