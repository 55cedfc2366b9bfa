"""What every reconciler shares: its inputs and result, its children, and its status write.

The rules here are controller-runtime's, so every kind gets them by using these pieces:

- ``Children`` reads each child before writing it. A name held by an object this owner does not
  control is a ``NameConflict``: never adopted, never changed, never deleted. A child already as
  this field manager would apply it is not written (``k8s.up_to_date`` compares with what the
  manager owns, so a field the operator stopped setting is still removed).
- ``Children.prune`` finds what to delete from the children that exist and that this owner
  controls (label selector plus controller owner reference), never from a record in status, so a
  child created just before a failed status write is still found and removed.
- ``write_status`` writes only a changed status, and only over the version of the object the
  reconcile read (resourceVersion): under a brief overlap of two replicas, the older view loses
  with a 409 and reconciles again instead of overwriting a newer status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from slipway.builders.meta import Owner, controlled_by, owner_selector
from slipway.config import OperatorConfig
from slipway.k8s import Cluster

from .conditions import Verdict

log = logging.getLogger("slipway.reconcile")


@dataclass(frozen=True)
class Context:
    """What a reconcile needs besides the object: API access and operator configuration."""

    cluster: Cluster
    config: OperatorConfig


@dataclass(frozen=True)
class Result:
    """How a reconcile ended, for the handler layer to map onto kopf.

    ``permanent``: the spec is wrong; retrying cannot help until the user changes it. Waiting on
    another object needs no field here: that object's changes reconcile again (a watch).
    ``requeue_after``: reconcile again in this many seconds although nothing changes (a rollout's
    next check; controller-runtime's RequeueAfter), through the operator's one scheduling loop.
    """

    permanent: str | None = None
    requeue_after: float | None = None


def describe_validation(error: ValidationError, root: str = "spec") -> str:
    """One line per problem, each naming the field: 'spec.model.uri: String should match ...'."""
    parts = []
    for e in error.errors():
        path = ".".join([root, *(str(p) for p in e["loc"])])
        parts.append(f"{path}: {e['msg']}")
    return "; ".join(parts)


def owner_of(body: dict[str, Any]) -> Owner:
    """The object as the owner of its children."""
    meta = body["metadata"]
    return Owner(body["apiVersion"], body["kind"], meta["name"], meta["namespace"], meta["uid"])


class NameConflict(Exception):
    """A child's name is held by an object this owner does not control."""

    def __init__(self, owner: Owner, live: dict[str, Any]) -> None:
        meta = live["metadata"]
        self.kind = live.get("kind", "object")
        self.name = f"{meta.get('namespace', owner.namespace)}/{meta['name']}"
        super().__init__(
            f"{self.kind} {self.name} already exists and is not controlled by {owner.kind} "
            f"{owner.name}; Slipway never adopts an object it did not create: delete or rename "
            f"that {self.kind}, or rename this {owner.kind}"
        )

    def verdict(self) -> Verdict:
        return Verdict("Degraded", False, "NameConflict", str(self), degraded=True)


_Key = tuple[str, str, str]


@dataclass
class Children:
    """One owner's children as they are now: each read once, checked, applied, pruned."""

    ctx: Context
    owner: Owner
    _live: dict[_Key, dict[str, Any] | None] = field(default_factory=dict)

    @staticmethod
    def _key(manifest: dict[str, Any]) -> _Key:
        return manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]

    def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """The live object of ``manifest``'s kind and name (read once per reconcile)."""
        key = self._key(manifest)
        if key not in self._live:
            api_version, kind, name = key
            self._live[key] = self.ctx.cluster.get(api_version, kind, self.owner.namespace, name)
        return self._live[key]

    def claim(self, manifests: list[dict[str, Any]]) -> NameConflict | None:
        """Check every name before any child is touched: the first one held by someone else."""
        for manifest in manifests:
            live = self.read(manifest)
            if live is not None and not controlled_by(live, self.owner):
                return NameConflict(self.owner, live)
        return None

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest`` unless it is already applied; returns the live object.

        Raises ``NameConflict`` for a name held by an object this owner does not control.
        """
        live = self.read(manifest)
        if live is not None and not controlled_by(live, self.owner):
            raise NameConflict(self.owner, live)
        obj, _ = self.ctx.cluster.apply_over(manifest, live)
        self._live[self._key(manifest)] = obj
        return obj

    def apply_only(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool, list[str]]:
        """Apply ``manifest`` as this owner's one child of its kind, then delete the others of that
        kind it controls (an older spec's run). Returns the live object, whether this created it,
        and the names deleted; raises ``NameConflict`` before writing anything, as ``apply``."""
        created = self.read(manifest) is None
        live = self.apply(manifest)
        keep = {manifest["metadata"]["name"]}
        return live, created, self.prune(manifest["apiVersion"], manifest["kind"], keep)

    def prune(self, api_version: str, kind: str, keep: set[str]) -> list[str]:
        """Delete this owner's children of ``kind`` whose names are not in ``keep``."""
        deleted = []
        found = self.ctx.cluster.list(
            api_version, kind, self.owner.namespace, owner_selector(self.owner), cached=True
        )
        for obj in found:
            meta = obj["metadata"]
            if (
                meta["name"] in keep
                or meta.get("deletionTimestamp")
                or not controlled_by(obj, self.owner)
            ):
                continue
            if self.ctx.cluster.delete(api_version, kind, self.owner.namespace, meta["name"]):
                deleted.append(meta["name"])
        return deleted


def clear_removed(old: Any, new: Any) -> Any:
    """``new`` with an explicit None for each key of a nested object that ``old`` has and ``new``
    drops, at every depth: a status is written as a JSON merge patch (RFC 7386), which merges
    nested objects and keeps the keys a patch does not mention (``stable.lineage.trainingJob`` of
    the version before must not survive into the next one's)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out = {k: clear_removed(old.get(k), v) for k, v in new.items()}
    out.update({k: None for k in old if k not in new})
    return out


def compact(value: Any) -> Any:
    """``value`` without None inside objects, at every depth (lists included): the API server
    drops such nulls, so a status compared with one that still has them would never match."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def write_status(ctx: Context, body: dict[str, Any], new: dict[str, Any]) -> bool:
    """Patch the status if it differs from the current one; returns whether it wrote.

    The patch carries the resourceVersion of ``body``: if the object changed since it was read,
    the API server refuses it with 409 (``ApiError.retriable``) and the caller reconciles again.
    """
    old = body.get("status") or {}
    desired = compact(new)  # a None anywhere means "not set", as the API server stores it
    if compact(old) == desired:
        return False
    patch: dict[str, Any] = clear_removed(old, desired)
    meta = body["metadata"]
    ctx.cluster.patch_status(
        body["apiVersion"],
        body["kind"],
        meta["namespace"],
        meta["name"],
        patch,
        resource_version=meta.get("resourceVersion"),
    )
    return True


def problem_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` reports a Degraded problem that ``old`` did not (another reason or
    message), so it gets its own Event even when the phase stays Degraded."""

    def degraded(status: dict[str, Any]) -> tuple[str, str] | None:
        for c in status.get("conditions") or []:
            if c.get("type") == "Degraded" and c.get("status") == "True":
                return str(c.get("reason")), str(c.get("message"))
        return None

    now = degraded(new)
    return now is not None and now != degraded(old)
