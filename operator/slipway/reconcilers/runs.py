"""What the Dataset and TrainingJob reconcilers share about external runs.

A Dataset ingestion or a TrainingJob runs somewhere else: a Kubeflow Pipelines server, a process
on the operator's machine, a distributed job. Three things follow, written once here:

- **Following a run.** No watch tells the operator that a KFP run or a local process ended, so a
  reconcile that leaves a run in flight returns ``InFlight``: the handler layer reconciles the
  object again after ``requeue_after`` seconds (controller-runtime's ``RequeueAfter``), a delay that
  grows with the run's age (``poll_delay``), so a short run is noticed within seconds and a
  day-long one costs a read every half minute. Nothing is written while the run's state is
  unchanged. (A kopf timer would put a finalizer on every object; kopf's own retry,
  ``TemporaryError(delay=...)``, would write its progress annotation on every poll.)
- **Cancelling on deletion.** While a run is in flight the object carries the finalizer
  ``slipway.dev/cancel-run`` (``hold``), added before the run is started, so a deletion cannot
  orphan it; the operator cancels the run, then removes the finalizer (``release``). Without a run
  in flight the object has no finalizer at all, and deleting it never waits for the operator.
- **Reading what a run wrote.** Results are files (``manifest.json``, ``metadata.json``,
  ``metrics.json``) under a storage URI. ``Store`` maps a URI to a path of this machine: the local
  providers' store for ``pvc://`` when the work ran locally, else the claim mounted into the
  operator's pod at ``/mnt/pvc/<claim>``; ``file://`` is a path. Object stores (s3://, gs://) are
  not read by the operator: such results are reported as unreadable, never guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.backends.storage import PVC_MOUNT_ROOT, LocalStore, StorageError, split_pvc
from slipway.config import OperatorConfig

from .base import Context, Result

FINALIZER = "slipway.dev/cancel-run"
MESSAGE_LIMIT = 1024
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MIN_POLL_S = 2.0
MAX_POLL_S = 30.0


@dataclass(frozen=True)
class InFlight(Result):
    """A run is in flight: reconcile this object again after ``requeue_after`` seconds."""

    requeue_after: float = MIN_POLL_S


def poll_delay(started: str | None, now: dt.datetime | None = None) -> float:
    """Seconds until the next look at a run that started at ``started`` (RFC 3339).

    A tenth of the run's age, between 2 and 30 seconds: a run is noticed within about 10% of its
    duration after it ends, and a long run is read at most twice a minute.
    """
    if not started:
        return MIN_POLL_S
    try:
        then = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return MIN_POLL_S
    age = ((now or dt.datetime.now(dt.UTC)) - then).total_seconds()
    return max(MIN_POLL_S, min(MAX_POLL_S, age / 10))


def terminal(state: str | None) -> bool:
    """Whether a recorded run state is final (pipelines' or training's vocabulary)."""
    return state in {"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED", "Succeeded", "Failed"}


def holds(body: dict[str, Any]) -> bool:
    return FINALIZER in (body["metadata"].get("finalizers") or [])


def _set_finalizers(ctx: Context, body: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
    meta = body["metadata"]
    return ctx.cluster.patch_metadata(
        body["apiVersion"],
        body["kind"],
        meta["namespace"],
        meta["name"],
        {"finalizers": finalizers or None},
        resource_version=meta.get("resourceVersion"),
    )


def hold(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """Add the cancel-run finalizer before a run starts; returns the object as patched.

    Guarded by the resourceVersion the reconcile read (409 on a concurrent change, and the
    reconcile runs again); the caller continues with the returned object, whose resourceVersion
    its status write then carries.
    """
    if holds(body):
        return body
    return _set_finalizers(ctx, body, [*(body["metadata"].get("finalizers") or []), FINALIZER])


def release(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """Remove the cancel-run finalizer (no run in flight any more); returns the object."""
    if not holds(body):
        return body
    kept = [f for f in body["metadata"].get("finalizers") or [] if f != FINALIZER]
    return _set_finalizers(ctx, body, kept)


@dataclass(frozen=True)
class Store:
    """Where this operator reads (and, for retention, deletes) what runs wrote."""

    local: LocalStore | None = None  # the work ran on this machine: its store holds pvc:// data

    @classmethod
    def for_provider(cls, config: OperatorConfig, local: bool) -> Store:
        return cls(LocalStore.configured(config.local_store) if local else None)

    def path(self, uri: str) -> Path | None:
        """The file or folder ``uri`` names on this machine; None where it cannot be reached."""
        try:
            if self.local is not None:
                return self.local.local_path(uri)
            if uri.startswith("pvc://"):
                claim, rest = split_pvc(uri)
                return Path(PVC_MOUNT_ROOT) / claim / rest
        except StorageError:
            return None
        if uri.startswith("file://"):
            return Path(uri[len("file://") :])
        return None

    def read_bytes(self, uri: str) -> bytes | None:
        path = self.path(uri)
        if path is None or not path.is_file():
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def read_json(self, uri: str) -> dict[str, Any] | None:
        """The JSON object at ``uri``; None when absent, unreachable or not an object."""
        data = self.read_bytes(uri)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def delete(self, uri: str) -> bool:
        """Delete the folder ``uri`` names; False where the operator cannot reach it."""
        path = self.path(uri)
        if path is None:
            return False
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended ('/' separated, no doubled slashes)."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts if p)])


def plain(message: str | None) -> str | None:
    """A run's message fit for a status: terminal colour codes removed, length bounded."""
    if not message:
        return None
    return _ANSI.sub("", message)[:MESSAGE_LIMIT]
