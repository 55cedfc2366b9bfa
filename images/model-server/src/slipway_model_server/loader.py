"""Fetch a model file from its URI and verify it against the expected sha256.

Kept apart from onnxruntime so that "where the bytes come from" (a local path, `file://`,
`s3://`, `https://` and anything else fsspec knows) and "are they the bytes we were promised"
are one small, testable step. Every failure becomes a `ModelLoadError` whose message is shown in
the readiness body and the log.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import fsspec

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model could not be fetched, verified, loaded or warmed up; the message says why."""


def fetch_model_bytes(uri: str, timeout_s: float = 300.0) -> bytes:
    """Return the file's bytes; local paths are read directly, other schemes go through fsspec."""
    if "://" not in uri:
        path = Path(uri)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {uri}: {exc.strerror or exc}") from exc
    protocol = uri.split("://", 1)[0].lower()
    storage_options: dict[str, object] = {}
    if protocol in ("http", "https"):
        storage_options["client_kwargs"] = {"timeout": _aiohttp_timeout(timeout_s)}
    try:
        with fsspec.open(uri, "rb", **storage_options) as handle:
            data = handle.read()
    except ImportError as exc:
        raise ModelLoadError(f"no fsspec backend for {protocol}:// ({exc})") from exc
    except Exception as exc:  # any backend error (e.g. missing credentials) is a load failure
        raise ModelLoadError(f"cannot fetch model from {uri}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, bytes):
        raise ModelLoadError(f"fetching {uri} returned {type(data).__name__}, not bytes")
    return data


def _aiohttp_timeout(timeout_s: float) -> object:
    import aiohttp

    return aiohttp.ClientTimeout(total=timeout_s)


def verify_sha256(data: bytes, expected: str | None) -> str:
    """Return the data's sha256; raise `ModelLoadError` when it is not the expected one."""
    actual = hashlib.sha256(data).hexdigest()
    if expected is None:
        log.warning("model digest not verified (sha256 %s): no expected digest configured", actual)
    elif actual != expected:
        raise ModelLoadError(f"sha256 mismatch: expected {expected}, got {actual}")
    return actual
