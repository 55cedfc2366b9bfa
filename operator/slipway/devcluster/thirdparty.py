"""Third-party CRDs from upstream at pinned versions (Katib, Kubeflow Trainer, Istio, ...).

Slipway's children are other projects' custom resources, and the local control plane must serve
their real schemas so the API server checks what the builders render. The pins (module, version,
the module zip's ``h1:`` hash, the path inside the module, the kinds to take) live in
``tests/cluster/crds/pins.yaml``. On first use each module is downloaded through the Go module
proxy (``go mod download``, which also checks it against the checksum database), the zip is hashed
again here the way go.sum does and compared with the pin, and the selected CRDs are written to
``<cache>/crds/<key of the pin>/``. Later runs read that folder: no Go, no network. Nothing
upstream is copied into the repository. Seldon Core's module is not served by the proxy, so its
schema is written by hand in ``tests/fixtures/crds/`` instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .paths import cache_dir

PINS = Path("tests/cluster/crds/pins.yaml")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LAYOUT = 2  # of a cache folder: one JSON file per CRD


@dataclass(frozen=True)
class Pin:
    """One upstream module at one version, and which of its CRDs to install."""

    module: str
    version: str
    sum: str  # go.sum's h1: hash of the module zip
    path: str  # a file, or a folder whose *.yaml files are read, inside the module
    kinds: tuple[str, ...]

    @property
    def key(self) -> str:
        """Names the cache folder: any change to the pin (or to the folder's layout) fetches
        again."""
        fields = [self.module, self.version, self.sum, self.path, sorted(self.kinds), _LAYOUT]
        text = json.dumps(fields)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def __str__(self) -> str:
        return f"{self.module}@{self.version}"


def _say(message: str) -> None:
    print(f"slipway: {message}", file=sys.stderr, flush=True)


def load_pins(text: str) -> list[Pin]:
    """The pins of a pins.yaml text; a malformed entry is named."""
    entries = yaml.safe_load(text) or []
    pins = []
    for number, entry in enumerate(entries, start=1):
        try:
            pins.append(
                Pin(
                    module=str(entry["module"]),
                    version=str(entry["version"]),
                    sum=str(entry["sum"]),
                    path=str(entry["path"]).strip("/"),
                    kinds=tuple(str(kind) for kind in entry["kinds"]),
                )
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{PINS} entry {number} lacks {exc}: {entry!r}") from None
    return pins


def zip_hash(archive: zipfile.ZipFile) -> str:
    """The ``h1:`` hash go.sum records for a module zip (Go's dirhash.Hash1): SHA-256 of the
    sorted lines '<sha256 of file>  <name>', base64-encoded."""
    lines = []
    for name in sorted(archive.namelist()):
        if "\n" in name:
            raise ValueError(f"module zip holds a file name with a newline: {name!r}")
        lines.append(f"{hashlib.sha256(archive.read(name)).hexdigest()}  {name}\n")
    digest = hashlib.sha256("".join(lines).encode()).digest()
    return "h1:" + base64.b64encode(digest).decode()


def select_crds(archive: zipfile.ZipFile, pin: Pin) -> list[dict[str, Any]]:
    """The CRDs of the pinned kinds found at the pin's path, in file order; every pinned kind must
    be there, so a bump that moved or renamed a CRD fails here rather than in a test."""
    prefix = f"{pin.module}@{pin.version}/{pin.path}"
    names = sorted(
        name
        for name in archive.namelist()
        if name == prefix
        or (
            name.startswith(prefix + "/")
            and "/" not in name[len(prefix) + 1 :]
            and name.endswith((".yaml", ".yml"))
        )
    )
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        for doc in yaml.load_all(archive.read(name), Loader=_LOADER):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            kind = doc["spec"]["names"]["kind"]
            if kind in pin.kinds and kind not in found:
                found[kind] = doc
    missing = [kind for kind in pin.kinds if kind not in found]
    if missing:
        raise RuntimeError(f"{pin} has no CRD for {missing} under {pin.path}")
    return [found[kind] for kind in pin.kinds]


def _download(pin: Pin, workdir: Path) -> Path:
    """``go mod download`` the pinned module; returns its zip in Go's module cache."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            f"Go is needed once to fetch the CRDs of {pin} through the Go module proxy; "
            "install Go >= 1.24"
        )
    proc = subprocess.run(
        [go, "mod", "download", "-json", str(pin)],
        cwd=workdir,  # outside any module: the pin alone decides the version
        env={**os.environ, "GOWORK": "off"},
        capture_output=True,
        text=True,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Zip" not in info:
        detail = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise RuntimeError(f"go mod download {pin} failed: {detail}")
    if info.get("Sum") != pin.sum:
        raise RuntimeError(f"{pin}: the Go tool reports {info.get('Sum')}, the pin says {pin.sum}")
    return Path(info["Zip"])


def unpack(module_zip: Path, pin: Pin, out: Path) -> list[Path]:
    """Check ``module_zip`` against the pin, then write the pinned CRDs into ``out``, one file
    each; ``out`` appears whole or not at all (another process may be unpacking the same pin)."""
    with zipfile.ZipFile(module_zip) as archive:
        actual = zip_hash(archive)
        if actual != pin.sum:
            raise RuntimeError(
                f"{pin}: the downloaded module hashes to {actual}, the pin says {pin.sum}; "
                "refusing a module that differs from the pinned one"
            )
        crds = select_crds(archive, pin)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    tmp.mkdir()
    for crd in crds:  # JSON: read back fifty times faster than YAML, and any tool takes it
        (tmp / f"{crd['metadata']['name']}.json").write_text(json.dumps(crd, indent=1))
    try:
        tmp.rename(out)
    except OSError:  # another process finished the same pin first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not out.is_dir():
            raise
    return sorted(out.glob("*.json"))


def cache_folder(pin: Pin, cache: Path) -> Path:
    """Where one pin's CRDs are kept: readable, and unique to the pin's exact content."""
    return cache / "crds" / f"{pin.module.replace('/', '_')}@{pin.version}-{pin.key}"


def upstream_crds(pins: Iterable[Pin], cache: Path | None = None) -> list[Path]:
    """The CRD files of ``pins``, fetched into the cache the first time; one file per CRD."""
    files: list[Path] = []
    for pin in pins:
        out = cache_folder(pin, cache or cache_dir())
        if not out.is_dir():
            started = time.monotonic()
            _say(f"fetching the {', '.join(pin.kinds)} CRDs of {pin} into {out} (first time only)")
            out.parent.mkdir(parents=True, exist_ok=True)
            unpack(_download(pin, out.parent), pin, out)
            _say(f"  fetched {pin} in {time.monotonic() - started:.1f} s")
        files.extend(sorted(out.glob("*.json")))
    return files


def pinned_crds(root: Path) -> list[Path]:
    """The upstream CRD files pinned in the checkout at ``root``."""
    return upstream_crds(load_pins((root / PINS).read_text()))
