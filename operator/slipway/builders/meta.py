"""Names, labels and owner references for every child object, in one place.

Child names and label values must be DNS-1123 labels of at most 63 characters, while a parent's
name may be up to 253. Long names are shortened deterministically: a prefix of the parent name plus
a hash of the whole of it, so two different parents never share a child name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

MAX_NAME = 63
PART_OF = "slipway"
MANAGED_BY = "slipway-operator"


@dataclass(frozen=True)
class Owner:
    """The parent custom resource that owns (and garbage-collects) its children."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    @property
    def label_key(self) -> str:
        return f"slipway.dev/{self.kind.lower()}"


def _hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def short_name(*parts: str, limit: int = MAX_NAME) -> str:
    """Join ``parts`` with '-' into a valid DNS label of at most ``limit`` characters.

    The last part (a suffix such as a version) is kept whole; the leading part is cut and a hash of
    the full name appended when the result would be too long.
    """
    full = "-".join(p for p in parts if p)
    if len(full) <= limit:
        return full
    suffix = "-".join(p for p in parts[1:] if p)
    digest = _hash(full)
    room = limit - len(digest) - 1 - (len(suffix) + 1 if suffix else 0)
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room in a {limit}-character name")
    head = re.sub(r"[-.]+$", "", parts[0][:room])
    return "-".join(p for p in (head, digest, suffix) if p)


def controlled_by(obj: dict[str, Any], owner: Owner) -> bool:
    """Whether ``owner`` is the controller of ``obj`` (its controller owner reference, by uid).

    An object of a child's name that fails this test belongs to someone else: the operator never
    adopts it, never changes it and never deletes it.
    """
    return any(
        ref.get("controller") and ref.get("uid") == owner.uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def owner_selector(owner: Owner) -> str:
    """The label selector matching every child ``owner`` labelled (ownership is then checked by
    the controller reference: a label alone can be copied)."""
    return f"{owner.label_key}={label_value(owner.name)},app.kubernetes.io/managed-by={MANAGED_BY}"


def written_by_another(meta: dict[str, Any], manager: str) -> bool:
    """Whether a field manager other than ``manager`` wrote the object since ``manager`` last did.

    Reads ``metadata.managedFields``; status writes (a controller reporting) do not count. Their
    times have a one-second resolution, so a write in the same second as ours counts as newer.
    """
    entries = [e for e in meta.get("managedFields") or [] if not e.get("subresource")]
    ours = max((str(e.get("time", "")) for e in entries if e.get("manager") == manager), default="")
    return any(e.get("manager") != manager and str(e.get("time", "")) >= ours for e in entries)


def label_value(value: str) -> str:
    """A label value for ``value``: itself when short enough, else a hashed short form."""
    return short_name(value) if len(value) > MAX_NAME else value


def labels(owner: Owner, component: str, **extra: str) -> dict[str, str]:
    """Recommended app.kubernetes.io labels plus the owner's slipway.dev label."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": label_value(owner.name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        owner.label_key: label_value(owner.name),
        **extra,
    }


def metadata(owner: Owner, name: str, component: str, **extra_labels: str) -> dict[str, Any]:
    """Object metadata of a child: name, namespace, labels and the controller owner reference."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component, **extra_labels),
        "ownerReferences": [owner.reference()],
    }


def app_label(owner: Owner) -> str:
    """Istio's and Kiali's ``app`` label: shared by every version of one parent."""
    return label_value(owner.name)
