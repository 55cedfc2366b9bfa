"""The pure parts of fetching upstream CRDs: the pins, go.sum's zip hash, choosing the pinned CRDs
from a module zip and unpacking them. The zips here are small ones built by the tests; the real
download through the Go module proxy runs in the integration tests' cluster start."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.devcluster.install import load_manifests
from slipway.devcluster.thirdparty import (
    PINS,
    Pin,
    cache_folder,
    load_pins,
    select_crds,
    unpack,
    zip_hash,
)

ROOT = Path(__file__).resolve().parents[2]
MODULE = "example.com/m"
PREFIX = f"{MODULE}@v1.0.0/"


def crd(kind: str, group: str = "example.com") -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "names": {"kind": kind, "plural": plural}},
    }


def module_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(PREFIX + name, text)
    return path


def pin(path: str, *kinds: str, sum: str = "h1:unset") -> Pin:
    return Pin(MODULE, "v1.0.0", sum, path, kinds)


def test_zip_hash_is_go_sums_h1(tmp_path: Path) -> None:
    # Expected value computed by Go's golang.org/x/mod/sumdb/dirhash.HashZip on the same content.
    files = {"go.mod": "module example.com/m\n", "crds/a.yaml": "kind: CustomResourceDefinition\n"}
    with zipfile.ZipFile(module_zip(tmp_path / "m.zip", files)) as archive:
        assert zip_hash(archive) == "h1:e3veBbIBqBCjWf7UIdaPX/mNCNMqFb4K5KKlkPQPTm4="


def test_pinned_kinds_are_taken_from_a_folder_and_from_a_multi_document_file(
    tmp_path: Path,
) -> None:
    files = {
        "crds/a.yaml": yaml.safe_dump(crd("Alpha")),
        "crds/kustomization.yaml": "kind: Kustomization\nresources: [a.yaml, b.yml]\n",
        "crds/b.yml": yaml.safe_dump(crd("Beta")),
        "crds/nested/c.yaml": yaml.safe_dump(crd("Gamma")),  # not read: one level only
        "all.gen.yaml": yaml.safe_dump_all([crd("Delta"), crd("Epsilon"), crd("Zeta")]),
    }
    with zipfile.ZipFile(module_zip(tmp_path / "m.zip", files)) as archive:
        folder = select_crds(archive, pin("crds", "Beta", "Alpha"))
        single = select_crds(archive, pin("all.gen.yaml", "Zeta", "Delta"))
        with pytest.raises(RuntimeError, match=r"no CRD for \['Gamma'\] under crds"):
            select_crds(archive, pin("crds", "Alpha", "Gamma"))
    assert [c["spec"]["names"]["kind"] for c in folder] == ["Beta", "Alpha"]
    assert [c["spec"]["names"]["kind"] for c in single] == ["Zeta", "Delta"]


def test_unpack_writes_one_file_per_pinned_crd(tmp_path: Path) -> None:
    files = {"all.yaml": yaml.safe_dump_all([crd("Alpha"), crd("Beta"), crd("Gamma")])}
    archive = module_zip(tmp_path / "m.zip", files)
    with zipfile.ZipFile(archive) as z:
        the_pin = pin("all.yaml", "Gamma", "Alpha", sum=zip_hash(z))
    out = cache_folder(the_pin, tmp_path / "cache")
    written = unpack(archive, the_pin, out)
    assert [p.name for p in written] == ["alphas.example.com.json", "gammas.example.com.json"]
    assert load_manifests(written) == [crd("Alpha"), crd("Gamma")]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no partial folder left


def test_a_module_that_differs_from_its_pin_is_refused(tmp_path: Path) -> None:
    archive = module_zip(tmp_path / "m.zip", {"all.yaml": yaml.safe_dump(crd("Alpha"))})
    with zipfile.ZipFile(archive) as z:
        good = zip_hash(z)
    tampered = module_zip(tmp_path / "t.zip", {"all.yaml": yaml.safe_dump(crd("Alpha")) + "#\n"})
    the_pin = pin("all.yaml", "Alpha", sum=good)
    out = cache_folder(the_pin, tmp_path / "cache")
    with pytest.raises(RuntimeError, match="refusing a module that differs"):
        unpack(tampered, the_pin, out)
    assert not out.exists()


def test_the_cache_folder_changes_with_every_field_of_the_pin(tmp_path: Path) -> None:
    base = pin("crds", "Alpha", sum="h1:a")
    variants = [
        pin("crds", "Alpha", sum="h1:b"),
        pin("crds/x.yaml", "Alpha", sum="h1:a"),
        pin("crds", "Alpha", "Beta", sum="h1:a"),
        Pin(MODULE, "v1.0.1", "h1:a", "crds", ("Alpha",)),
    ]
    folders = {cache_folder(p, tmp_path) for p in [base, *variants]}
    assert len(folders) == 5
    assert cache_folder(base, tmp_path).name.startswith("example.com_m@v1.0.0-")


def test_the_repository_pins_are_complete_and_documented() -> None:
    pins = load_pins((ROOT / PINS).read_text())
    readme = (ROOT / "tests" / "fixtures" / "crds" / "README.md").read_text()
    assert {p.module for p in pins} >= {
        "github.com/kubeflow/katib",
        "github.com/kubeflow/trainer/v2",
        "github.com/kubeflow/training-operator",
        "istio.io/api",
    }
    for p in pins:
        assert re.fullmatch(r"h1:[A-Za-z0-9+/]{43}=", p.sum), p
        assert p.kinds, p
        row = f"| `{p.module}` | {p.version} | `{p.path}"
        assert row in readme, f"tests/fixtures/crds/README.md has no row for {p}"
        assert all(kind in readme for kind in p.kinds)


def test_a_malformed_pin_is_named() -> None:
    with pytest.raises(ValueError, match="entry 2 lacks 'sum'"):
        load_pins(
            "- {module: a, version: v1, sum: 'h1:x', path: p, kinds: [A]}\n"
            "- {module: b, version: v1, path: p, kinds: [B]}\n"
        )
