"""Digest-verified checkpoints: ``ckpt-<step>.pt`` plus a ``ckpt-<step>.pt.sha256`` sidecar.

The sidecar is written after the checkpoint, so a checkpoint without one (a crash mid-write) or
whose bytes do not hash to it (corruption) is skipped with a message and never deserialised.
Each checkpoint carries the run key (a hash of the dataset digest and training parameters); one
written for another configuration is skipped too. Only the newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import torch

from . import storage

PATTERN = re.compile(r"^ckpt-(\d{9})\.pt$")


def _name(step: int) -> str:
    return f"ckpt-{step:09d}.pt"


def save(folder: str, step: int, state: dict[str, Any], keep: int = 3) -> str:
    """Write checkpoint ``step`` and its digest, prune beyond ``keep``; return its URI."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    uri = storage.join(folder, _name(step))
    storage.write_bytes(uri, data)
    storage.write_bytes(uri + ".sha256", (storage.sha256_bytes(data) + "\n").encode())
    steps = sorted(_steps(folder), reverse=True)
    for old in steps[max(keep, 1) :]:
        storage.remove(storage.join(folder, _name(old)) + ".sha256")
        storage.remove(storage.join(folder, _name(old)))
    return uri


def _steps(folder: str) -> list[int]:
    return [int(m.group(1)) for name in storage.listdir(folder) if (m := PATTERN.match(name))]


def load_latest(folder: str, run_key: str, log: Any = None) -> dict[str, Any] | None:
    """The newest checkpoint whose digest verifies and whose run key matches, or None."""
    emit = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    for step in sorted(_steps(folder), reverse=True):
        uri = storage.join(folder, _name(step))
        if not storage.exists(uri + ".sha256"):
            emit(f"skipping checkpoint {uri}: no digest file (incomplete write)")
            continue
        expected = storage.read_bytes(uri + ".sha256").decode().strip()
        data = storage.read_bytes(uri)
        actual = storage.sha256_bytes(data)
        if actual != expected:
            emit(f"skipping corrupt checkpoint {uri}: sha256 {actual} != recorded {expected}")
            continue
        state: dict[str, Any] = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if state.get("run_key") != run_key:
            emit(f"skipping checkpoint {uri}: written for another configuration")
            continue
        emit(f"resuming from checkpoint {uri} (step {step})")
        return state
    return None
