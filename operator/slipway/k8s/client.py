"""A thin synchronous client over the kubernetes package's ApiClient.

``apply`` is server-side apply under one field manager, preceded by a read: when the live object
already contains everything we would apply, nothing is sent, so a steady-state reconcile makes no
writes at all. Status is written with a merge patch on the status subresource.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from .resources import resource

log = logging.getLogger("slipway.k8s")

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


class ApiError(Exception):
    """An API call failed; ``status`` is the HTTP status (0 for transport errors)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retriable(self) -> bool:
        return self.status in (0, 409, 429) or self.status >= 500


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


class Cluster:
    """API access for one operator: every call goes through ``_call``."""

    def __init__(self, api: k8s.ApiClient, field_manager: str = "slipway") -> None:
        self.api = api
        self.field_manager = field_manager
        self.writes = 0  # API writes made, for the steady-state benchmark and tests

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if method != "GET":
            self.writes += 1
        try:
            method, url, headers, serialized, _ = self.api.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(method, url, headers, serialized, _request_timeout=30)
            response.read()
        except ApiException as exc:
            raise ApiError(exc.status or 0, f"{method} {path}: {exc.reason}: {exc.body}") from exc
        except OSError as exc:  # connection refused, reset, TLS
            raise ApiError(0, f"{method} {path}: {exc}") from exc
        if not 200 <= response.status < 300:
            text = response.data.decode(errors="replace") if response.data else ""
            raise ApiError(response.status, f"{method} {path}: {response.status} {_message(text)}")
        data = json.loads(response.data) if response.data else None
        return data

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            obj: dict[str, Any] = self._call(
                "GET", resource(api_version, kind).path(namespace, name)
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def list(
        self, api_version: str, kind: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace, optionally filtered by a label selector."""
        query = [("labelSelector", selector)] if selector else []
        data = self._call("GET", resource(api_version, kind).path(namespace), None, query)
        items: list[dict[str, Any]] = data.get("items") or []
        return items

    def count(self, api_version: str, kind: str, namespace: str | None) -> int:
        """How many objects of a kind a namespace holds, without transferring them all."""
        data = self._call(
            "GET", resource(api_version, kind).path(namespace), None, [("limit", "1")]
        )
        remaining = int((data.get("metadata") or {}).get("remainingItemCount") or 0)
        return len(data.get("items") or []) + remaining

    def apply(
        self, manifest: dict[str, Any], check_first: bool = True
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply ``manifest``; returns the live object and whether it was written.

        With ``check_first`` the live object is read first and nothing is sent when it already
        matches. Callers that expect a change (a new object, a new spec) skip that read.
        """
        meta = manifest["metadata"]
        res = resource(manifest["apiVersion"], manifest["kind"])
        namespace = meta.get("namespace")
        live = None
        if check_first:
            live = self.get(manifest["apiVersion"], manifest["kind"], namespace, meta["name"])
            if live is not None and contains(live, _without_status(manifest)):
                return live, False
        query = [("fieldManager", self.field_manager), ("force", "true")]
        path = res.path(namespace, meta["name"])
        applied: dict[str, Any] = self._call("PATCH", path, manifest, query, APPLY)
        verb = "Applied" if not check_first else "Created" if live is None else "Updated"
        where = f"{namespace}/{meta['name']}" if namespace else meta["name"]
        log.info("%s %s %s", verb, manifest["kind"], where)
        return applied, True

    def credentials(self) -> dict[str, Any]:
        """This client's server and credentials, as keyword arguments for kopf's ConnectionInfo,
        so kopf's watches and this layer's calls always authenticate the same way."""
        cfg = self.api.configuration
        token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
        if token and cfg.api_key_prefix.get("authorization"):
            token = f"{cfg.api_key_prefix['authorization']} {token}"
        return {
            "server": cfg.host,
            "ca_path": cfg.ssl_ca_cert,
            "insecure": not cfg.verify_ssl,
            "scheme": "Bearer" if token else None,
            "token": token.split(" ", 1)[1] if token and " " in token else token,
            "certificate_path": cfg.cert_file,
            "private_key_path": cfg.key_file,
        }

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create ``manifest`` as ``kubectl create`` does: unknown fields are an error."""
        meta = manifest["metadata"]
        path = resource(manifest["apiVersion"], manifest["kind"]).path(meta.get("namespace"))
        created: dict[str, Any] = self._call(
            "POST", path, manifest, [("fieldValidation", "Strict")]
        )
        return created

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete the object (its own children go with it); False if it was already gone."""
        try:
            self._call(
                "DELETE",
                resource(api_version, kind).path(namespace, name),
                {"propagationPolicy": "Background"},
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        log.info("Deleted %s %s/%s", kind, namespace, name)
        return True

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        """Merge-patch the status subresource (fields set to None are removed)."""
        path = resource(api_version, kind).path(namespace, name, "status")
        self._call("PATCH", path, {"status": status}, None, MERGE)

    def event(
        self, involved: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        """Record a Kubernetes Event on ``involved`` (shown by ``kubectl describe``)."""
        meta = involved["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name'][:200]}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.field_manager},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._call("POST", resource("v1", "Event").path(meta["namespace"]), body)
        except ApiError as exc:  # an event is informational: never fail a reconcile over one
            log.warning("could not record event %s on %s: %s", reason, meta["name"], exc)


def _message(text: str) -> str:
    """The ``message`` of a Kubernetes Status body, or the raw text."""
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text


def _without_status(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "status"}


def connect(kubeconfig: str | None = None, field_manager: str = "slipway") -> Cluster:
    """A Cluster from in-cluster credentials, or from ``kubeconfig`` / $KUBECONFIG / ~/.kube."""
    configuration = k8s.Configuration()
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    return Cluster(k8s.ApiClient(configuration), field_manager)
