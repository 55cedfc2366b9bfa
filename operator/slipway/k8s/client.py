"""A thin synchronous client over the kubernetes package's ApiClient.

``apply`` is server-side apply under one field manager, preceded by a read: when the live object
is already what this manager would apply (``managed.up_to_date``: same values, and no field it owns
that the manifest dropped), nothing is sent, so a steady-state reconcile makes no writes at all.
Status is written with a merge patch on the status subresource, optionally guarded by the
resourceVersion the caller read (optimistic concurrency: a newer status is never overwritten).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from .managed import up_to_date
from .resources import require, resource

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


class Cluster:
    """API access for one operator: every call goes through ``_call``."""

    def __init__(
        self, api: k8s.ApiClient, field_manager: str = "slipway", guarded: bool = False
    ) -> None:
        self.api = api
        self.field_manager = field_manager
        # The operator's client refuses any call its resource table does not declare: the table is
        # what the Helm chart grants, so an undeclared call would be forbidden in a cluster.
        self.guarded = guarded
        self.writes = 0  # API writes made, for the steady-state benchmark and tests

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> Any:
        if self.guarded:
            require(method, path, content_type)
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
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        selector: str = "",
        cached: bool = False,
    ) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace, optionally filtered by a label selector.

        ``cached`` answers from the API server's watch cache (``resourceVersion=0``): cheaper, and
        possibly a moment behind, which suits a caller that acts only on what it finds.
        """
        query = [("labelSelector", selector)] if selector else []
        if cached:
            query.append(("resourceVersion", "0"))
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

        With ``check_first`` the live object is read first and nothing is sent when it is already
        what this field manager would apply.
        """
        if not check_first:
            return self._apply(manifest, "Applied"), True
        meta = manifest["metadata"]
        live = self.get(
            manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]
        )
        return self.apply_over(manifest, live)

    def apply_over(
        self, manifest: dict[str, Any], live: dict[str, Any] | None
    ) -> tuple[dict[str, Any], bool]:
        """Apply ``manifest`` over ``live`` (the object as the caller just read it, None if absent);
        nothing is sent when ``live`` is already what this field manager would apply."""
        if live is not None and up_to_date(live, manifest, self.field_manager):
            return live, False
        return self._apply(manifest, "Created" if live is None else "Updated"), True

    def _apply(self, manifest: dict[str, Any], verb: str) -> dict[str, Any]:
        meta = manifest["metadata"]
        namespace = meta.get("namespace")
        query = [("fieldManager", self.field_manager), ("force", "true")]
        path = resource(manifest["apiVersion"], manifest["kind"]).path(namespace, meta["name"])
        applied: dict[str, Any] = self._call("PATCH", path, manifest, query, APPLY)
        where = f"{namespace}/{meta['name']}" if namespace else meta["name"]
        log.info("%s %s %s", verb, manifest["kind"], where)
        return applied

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
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (fields set to None are removed); returns the object.

        With ``resource_version`` the patch applies only to that version of the object: if anyone
        wrote it since (another replica's status, a spec change), the API server answers 409 and
        nothing is written.
        """
        path = resource(api_version, kind).path(namespace, name, "status")
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        patched: dict[str, Any] = self._call("PATCH", path, body, None, MERGE)
        return patched

    def patch_metadata(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        metadata: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the object's metadata (e.g. its finalizers); returns the object.

        A list such as ``finalizers`` is replaced whole by a merge patch, so pass the
        ``resource_version`` the list was read at: a concurrent change then answers 409.
        """
        path = resource(api_version, kind).path(namespace, name)
        meta = dict(metadata)
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        patched: dict[str, Any] = self._call("PATCH", path, {"metadata": meta}, None, MERGE)
        return patched

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


def connect(
    kubeconfig: str | None = None, field_manager: str = "slipway", guarded: bool = False
) -> Cluster:
    """A Cluster from in-cluster credentials, or from ``kubeconfig`` / $KUBECONFIG / ~/.kube.

    ``guarded``: refuse calls that ``resources`` does not declare (the operator's own client).
    """
    configuration = k8s.Configuration()
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    return Cluster(k8s.ApiClient(configuration), field_manager, guarded)
