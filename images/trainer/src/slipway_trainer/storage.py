"""Thin fsspec helpers so every reader and writer accepts local paths, PVC mounts and object stores.

A URI without a scheme is a local path; ``file://``, ``s3://``, ``gs://``, ``https://`` and the
rest go through fsspec (the matching filesystem package, e.g. s3fs or gcsfs, must be installed).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

CHUNK = 1 << 20


def filesystem(uri: str) -> tuple[Any, str]:
    """Return ``(filesystem, path)`` for a URI or a plain local path."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def is_local(uri: str) -> bool:
    """True when the URI names the local filesystem (plain path or ``file://``)."""
    return isinstance(filesystem(uri)[0], LocalFileSystem)


def join(base: str, *parts: str) -> str:
    """Join path segments onto a URI, keeping its scheme."""
    if "://" in base:
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.join(rest, *parts)}"
    return os.path.join(base, *parts)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as handle:
        data: bytes = handle.read()
    return data


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file; on local disks through a temporary name and an atomic rename."""
    fs, path = filesystem(uri)
    parent = (
        posixpath.dirname(path) if not isinstance(fs, LocalFileSystem) else os.path.dirname(path)
    )
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return
    with fs.open(path, "wb") as handle:
        handle.write(data)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


def listdir(uri: str) -> list[str]:
    """Base names of the entries directly under a directory URI (empty when it does not exist)."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(str(entry).rstrip("/")) for entry in fs.ls(path, detail=False))


def remove(uri: str) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(uri: str) -> str:
    """Stream a file through sha256 and return the hex digest."""
    fs, path = filesystem(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
