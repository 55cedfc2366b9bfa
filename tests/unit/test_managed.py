"""The no-op check: equal values and no owned field the manifest dropped (managedFields)."""

from __future__ import annotations

from typing import Any

from slipway.k8s.managed import stale_fields, up_to_date

MANIFEST: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "m", "namespace": "ns", "labels": {"app": "m"}},
    "spec": {"ports": [{"name": "http", "port": 9000}], "selector": {"app": "m"}},
}


def owned(extra_label: bool = False, extra_port: bool = False) -> dict[str, Any]:
    labels = {"f:app": {}} | ({"f:old": {}} if extra_label else {})
    ports = {'k:{"port":9000,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}}}
    if extra_port:
        ports['k:{"port":9100,"protocol":"TCP"}'] = {".": {}, "f:port": {}}
    return {
        "f:metadata": {"f:labels": labels},
        "f:spec": {"f:ports": ports, "f:selector": {"f:app": {}}},
    }


def live(fields: dict[str, Any], manager: str = "slipway", **changes: Any) -> dict[str, Any]:
    obj = {
        **MANIFEST,
        "metadata": {
            **MANIFEST["metadata"],
            "labels": {"app": "m", "old": "1"},
            "managedFields": [
                {"manager": manager, "operation": "Apply", "fieldsV1": fields},
                {"manager": "seldon", "operation": "Update", "subresource": "status"},
            ],
        },
        "spec": {
            "ports": [{"name": "http", "port": 9000, "protocol": "TCP", "targetPort": 9000}],
            "selector": {"app": "m"},
            "clusterIP": "10.0.0.1",
        },
    }
    return obj | changes


def test_an_object_as_applied_is_up_to_date() -> None:
    # Extra live fields (server defaults, another manager's label) do not matter.
    assert up_to_date(live(owned()), MANIFEST, "slipway")


def test_a_dropped_label_or_list_element_is_stale() -> None:
    assert stale_fields(owned(extra_label=True), MANIFEST) == [".metadata.labels.old"]
    assert not up_to_date(live(owned(extra_label=True)), MANIFEST, "slipway")
    stale = stale_fields(owned(extra_port=True), MANIFEST)
    assert stale == ['.spec.ports[{"port":9100,"protocol":"TCP"}]']


def test_a_changed_value_or_foreign_object_is_not_up_to_date() -> None:
    changed = live(owned(), spec={"ports": [{"name": "http", "port": 9001}]})
    assert not up_to_date(changed, MANIFEST, "slipway")
    # Never applied by this manager (created by someone else): not ours to call up to date.
    assert not up_to_date(live(owned(), manager="kubectl"), MANIFEST, "slipway")


def test_set_and_index_entries() -> None:
    desired = {"spec": {"finalizers": ["a"], "args": ["x", "y"]}}
    assert stale_fields({"f:spec": {"f:finalizers": {'v:"b"': {}}}}, desired) == [
        '.spec.finalizers["b"]'
    ]
    assert stale_fields({"f:spec": {"f:finalizers": {'v:"a"': {}}}}, desired) == []
    assert stale_fields({"f:spec": {"f:args": {"i:2": {}}}}, desired) == [".spec.args[2]"]
