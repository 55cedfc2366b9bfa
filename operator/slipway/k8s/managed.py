"""Is a live object already what this field manager would apply? Answered from managedFields.

Server-side apply records, per field manager, the set of fields its last apply set
(``metadata.managedFields[].fieldsV1``). Applying again is a no-op exactly when

1. the live object holds every field of the manifest with the same value (``contains``), and
2. the manager owns no field that the manifest no longer sets (``stale_fields``).

The second check is what a superset comparison alone misses: a label, a toleration or a node
selector entry the operator stopped rendering (an upgrade, a node pool changed in the
configuration) stays on the live object, owned by the operator, until it applies again, and SSA
then removes it. Both checks are pure; the k8s client uses them to skip writes.
"""

from __future__ import annotations

import json
from typing import Any


def contains(live: Any, desired: Any) -> bool:
    """Whether ``live`` already holds every field of ``desired`` (extra live fields are fine).

    Lists must have the same length and match element by element, which is how the API server
    stores the lists Slipway writes.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def owned_fields(meta: dict[str, Any], manager: str) -> dict[str, Any] | None:
    """The fields ``manager``'s last apply set on the object (not its status), or None if it
    never applied it (the object was created by someone else, or by another kind of write)."""
    for entry in meta.get("managedFields") or []:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            fields: dict[str, Any] = entry.get("fieldsV1") or {}
            return fields
    return None


def _keyed_element(items: Any, keys: dict[str, Any]) -> Any:
    """The element of an associative list whose key fields match ``keys``.

    A key field the manifest leaves to the server's default (a Service port's ``protocol``) is
    absent from the manifest's element: only the key fields it sets are compared.
    """
    if not isinstance(items, list):
        return None
    for item in items:
        if not isinstance(item, dict):
            continue
        present = [k for k in keys if k in item]
        if present and all(item[k] == keys[k] for k in present):
            return item
    return None


def stale_fields(owned: dict[str, Any], desired: Any, path: str = "") -> list[str]:
    """Paths in ``owned`` (a fieldsV1 set) that ``desired`` no longer sets.

    fieldsV1 keys: ``f:<name>`` a field, ``k:<json>`` an associative-list element by its keys,
    ``v:<json>`` a set element by value, ``i:<n>`` a list index, ``.`` the element itself.
    """
    stale: list[str] = []
    for key, sub in owned.items():
        kind, _, rest = key.partition(":")
        if kind == "f":
            where = f"{path}.{rest}"
            if not isinstance(desired, dict) or rest not in desired:
                stale.append(where)
                continue
            child = desired[rest]
        elif kind == "k":
            where = f"{path}[{rest}]"
            keys = json.loads(rest)
            child = _keyed_element(desired, keys)
            if child is None:
                stale.append(where)
                continue
            # The key fields themselves are owned through the element; the manifest may leave
            # one to its default.
            sub = {k: v for k, v in sub.items() if k.removeprefix("f:") not in keys}
        elif kind == "v":
            if not isinstance(desired, list) or json.loads(rest) not in desired:
                stale.append(f"{path}[{rest}]")
            continue
        elif kind == "i":
            index = int(rest)
            where = f"{path}[{index}]"
            if not isinstance(desired, list) or index >= len(desired):
                stale.append(where)
                continue
            child = desired[index]
        else:  # "." (the element itself) or a key kind this code does not know: nothing below
            continue
        if isinstance(sub, dict) and sub:
            stale.extend(stale_fields(sub, child, where))
    return stale


def up_to_date(live: dict[str, Any], manifest: dict[str, Any], manager: str) -> bool:
    """Whether applying ``manifest`` as ``manager`` would change nothing on ``live``."""
    owned = owned_fields(live.get("metadata") or {}, manager)
    if owned is None:
        return False
    desired = {k: v for k, v in manifest.items() if k != "status"}
    return contains(live, desired) and not stale_fields(owned, desired)
