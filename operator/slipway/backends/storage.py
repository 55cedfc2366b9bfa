"""Storage URIs as the trainer sees them: ``pvc://`` on this machine and in pods.

The API accepts ``pvc://<claim>/<path>`` for datasets and models. ``slipway_trainer`` reads any
fsspec URI and plain paths, but fsspec knows no ``pvc`` protocol, so a ``pvc://`` URI is always
turned into a path before it reaches the trainer:

* local providers (``LocalStore``): ``pvc://<claim>/<path>`` is ``<store>/pvc/<claim>/<path>`` and
  ``file://<path>`` is ``<path>``; the trainer and the model-server stand-ins get plain paths;
* pods (``pod_path`` / ``pvc_volumes``): the claim is mounted at ``/mnt/pvc/<claim>`` and the URI
  becomes ``/mnt/pvc/<claim>/<path>``.

Other schemes (``s3://``, ``gs://``, ``https://``, ``builtin://``) pass through unchanged.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.builders.meta import short_name

PVC_MOUNT_ROOT = "/mnt/pvc"
_PVC = re.compile(r"^pvc://(?P<claim>[a-z0-9]([-a-z0-9]*[a-z0-9])?)(?:/(?P<path>.*))?$")


class StorageError(ValueError):
    """A URI the operator cannot map (e.g. a malformed pvc:// URI)."""


def split_pvc(uri: str) -> tuple[str, str]:
    """``(claim, path)`` of a ``pvc://<claim>/<path>`` URI; the path has no leading slash."""
    match = _PVC.match(uri)
    if not match:
        raise StorageError(f"{uri!r} is not a pvc://<claim>/<path> URI with a valid claim name")
    path = (match.group("path") or "").strip("/")
    if ".." in path.split("/"):
        raise StorageError(f"{uri!r}: '..' is not allowed in a pvc:// path")
    return match.group("claim"), path


def default_store() -> Path:
    """$SLIPWAY_CACHE, else $XDG_CACHE_HOME/slipway, else ~/.cache/slipway; then /local-store."""
    explicit = os.environ.get("SLIPWAY_CACHE")
    base = (
        Path(explicit)
        if explicit
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slipway"
    )
    return base / "local-store"


@dataclass(frozen=True)
class LocalStore:
    """The local providers' folder: ``runs/<run name>/`` and ``pvc/<claim>/...``."""

    root: Path

    @classmethod
    def configured(cls, folder: str | None) -> LocalStore:
        return cls(Path(folder).expanduser() if folder else default_store())

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def local_path(self, uri: str) -> Path | None:
        """The file or folder ``uri`` names on this machine; None for remote schemes."""
        if uri.startswith("pvc://"):
            claim, path = split_pvc(uri)
            return self.root / "pvc" / claim / path
        if uri.startswith("file://"):
            return Path(uri[len("file://") :])
        if "://" not in uri:
            return Path(uri)
        return None

    def for_trainer(self, uri: str) -> str:
        """``uri`` as a local trainer process must be given it (a path, or unchanged)."""
        path = self.local_path(uri)
        return str(path) if path is not None else uri

    def read_json(self, uri: str) -> dict[str, Any] | None:
        """The JSON object at ``uri`` on this machine; None when absent, remote or not an object."""
        path = self.local_path(uri)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def pod_path(uri: str) -> str:
    """``uri`` as a pod sees it: pvc:// becomes a path under its claim's mount; others unchanged."""
    if not uri.startswith("pvc://"):
        return uri[len("file://") :] if uri.startswith("file://") else uri
    claim, path = split_pvc(uri)
    return f"{PVC_MOUNT_ROOT}/{claim}/{path}".rstrip("/")


def pvc_volumes(*uris: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and container mounts for the claims ``uris`` name (one per claim, sorted)."""
    claims = sorted({split_pvc(u)[0] for u in uris if u.startswith("pvc://")})
    volumes = [
        {"name": short_name(f"pvc-{c}"), "persistentVolumeClaim": {"claimName": c}} for c in claims
    ]
    mounts = [
        {"name": short_name(f"pvc-{c}"), "mountPath": f"{PVC_MOUNT_ROOT}/{c}"} for c in claims
    ]
    return volumes, mounts
