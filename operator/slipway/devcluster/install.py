"""Install CRDs and apply manifests on a running control plane, through the k8s layer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from slipway.k8s import ApiError, Cluster
from slipway.k8s.resources import resource

CRD_API = "apiextensions.k8s.io/v1"
# libyaml's safe loader when present: upstream CRDs run to megabytes, ten times slower in Python
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every object in the YAML files under ``paths`` (files or folders; a file named ``*.json``
    holds one JSON object), in file order."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    docs: list[dict[str, Any]] = []
    for file in files:
        if file.suffix == ".json":  # one object (the cached upstream CRDs)
            docs.append(json.loads(file.read_text()))
            continue
        docs.extend(d for d in yaml.load_all(file.read_text(), Loader=_LOADER) if d)
    return docs


def install_crds(cluster: Cluster, paths: Iterable[Path], timeout: float = 60.0) -> list[str]:
    """Apply the CRDs found in ``paths``, wait until each is Established and its storage ready."""
    crds = [crd for crd in load_manifests(paths) if crd.get("kind") == "CustomResourceDefinition"]
    for crd in crds:
        cluster.apply(crd)
    deadline = time.monotonic() + timeout
    pending = {crd["metadata"]["name"] for crd in crds}
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            live = cluster.get(CRD_API, "CustomResourceDefinition", None, name) or {}
            conditions = (live.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"CRDs not established after {timeout:.0f} s: {sorted(pending)}")
    for crd in crds:
        _warm(cluster, crd, deadline)
    return [crd["metadata"]["name"] for crd in crds]


def _warm(cluster: Cluster, crd: dict[str, Any], deadline: float) -> None:
    """List the kind once: the API server builds a CRD's storage (and watch cache) on first use and
    answers 429 meanwhile, which a controller started right after would log as errors."""
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    api_version, kind = f"{spec['group']}/{version}", spec["names"]["kind"]
    while True:
        try:
            cluster.count(api_version, kind, None)
            return
        except KeyError:
            return  # a kind the k8s layer has no path for: nothing will watch it
        except ApiError as exc:
            if exc.status != 429 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def apply_manifests(
    cluster: Cluster, manifests: Iterable[dict[str, Any]], namespace: str = "default"
) -> list[str]:
    """Apply each manifest (namespace defaulted); returns 'Kind/name' for each."""
    applied = []
    for manifest in manifests:
        meta = manifest.setdefault("metadata", {})
        if resource(manifest["apiVersion"], manifest["kind"]).namespaced:
            meta.setdefault("namespace", namespace)
        cluster.apply(manifest)
        applied.append(f"{manifest['kind']}/{meta['name']}")
    return applied
