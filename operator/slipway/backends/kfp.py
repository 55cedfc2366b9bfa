"""Pipelines provider ``kfp``: Kubeflow Pipelines v2 through its REST API (``/apis/v2beta1``).

Plain HTTP with the standard library (``urllib``), not the ``kfp`` SDK and not ``kfp-server-api``:
kfp 2.17 pins ``kubernetes < 31`` and ``protobuf < 7``, which the operator's environment cannot
take, and the generated client would add a package (and its urllib3/dateutil pins) for six JSON
calls. The operator's reconciles are synchronous, so a blocking client with a timeout fits.

Calls: ``GET pipelines/names/{name}`` and ``POST pipelines`` (a pipeline per compiled IR, created
once), ``GET pipelines/{id}/versions`` (filter by name) and ``POST pipelines/upload_version`` (one
version per IR content: ``<pipeline>-<sha256 prefix>``, so a new operator release uploads its new IR
and never replaces what running runs use), ``GET``/``POST experiments`` (the configured experiment),
``GET runs`` with a ``display_name EQUALS`` filter, ``POST runs``, ``GET runs/{id}``,
``POST runs/{id}:terminate``. Auth: a bearer token read from a file on every call (projected
ServiceAccount tokens rotate); TLS with an optional CA file. In multi-user mode every call names a
namespace (``kfp.namespace``, else the object's own: a Kubeflow profile).

The compiled IR (``<name>.yaml``) is read from ``kfp.pipelinesDir``, else the checkout's
``pipelines/compiled``, else ``/opt/slipway/pipelines`` (where the operator image puts it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from slipway.config import KfpConfig

from .localruns import checkout
from .pipelines import (
    CANCELED,
    FAILED,
    PENDING,
    STATES,
    PipelineRun,
    PipelinesError,
    RunStatus,
)

API = "/apis/v2beta1"
IMAGE_PIPELINES_DIR = Path("/opt/slipway/pipelines")


def _equals(key: str, value: str) -> str:
    predicate = {"key": key, "operation": "EQUALS", "string_value": value}
    return json.dumps({"predicates": [predicate]})


def pipelines_dir(config: KfpConfig) -> Path:
    """Where the compiled pipeline IR is read from (see the module docstring)."""
    if config.pipelines_dir:
        return Path(config.pipelines_dir)
    root = checkout()
    if root is not None and (root / "pipelines" / "compiled").is_dir():
        return root / "pipelines" / "compiled"
    return IMAGE_PIPELINES_DIR


def _failure(run: dict[str, Any]) -> str:
    """The failing tasks and their errors, then the run's own error."""
    parts = []
    for task in (run.get("run_details") or {}).get("task_details") or []:
        if task.get("state") == FAILED:
            error = (task.get("error") or {}).get("message") or "failed"
            parts.append(f"task {task.get('display_name') or task.get('task_id')}: {error}")
    error = (run.get("error") or {}).get("message")
    if error:
        parts.append(str(error))
    return "; ".join(parts)


def _time(value: object) -> str | None:
    # KFP sends the zero time (1970-01-01T00:00:00Z) for a run that has not finished.
    text = str(value or "")
    return text if text and not text.startswith("1970-") else None


def run_status(run: dict[str, Any]) -> RunStatus:
    """A ``RunStatus`` from a v2beta1 Run object."""
    state = str(run.get("state") or PENDING)
    if state not in STATES:  # RUNTIME_STATE_UNSPECIFIED and anything newer
        state = PENDING
    status = RunStatus(run_id=str(run.get("run_id") or ""), state=state)
    return RunStatus(
        run_id=status.run_id,
        state=state,
        message=_failure(run) if state in (FAILED, CANCELED) else "",
        created=_time(run.get("created_at")),
        finished=_time(run.get("finished_at")) if status.terminal else None,
    )


class KfpPipelines:
    """The ``kfp`` pipelines provider."""

    def __init__(self, config: KfpConfig) -> None:
        self.config = config
        self.base = config.endpoint.rstrip("/") + API
        self._versions: dict[tuple[str, str], tuple[str, str]] = {}
        self._experiments: dict[str, str] = {}

    # --- HTTP ------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token_file = self.config.token_file
        if token_file and Path(token_file).is_file():
            headers["Authorization"] = f"Bearer {Path(token_file).read_text().strip()}"
        return headers

    def _call(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        upload: tuple[str, bytes] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif upload is not None:
            boundary = uuid.uuid4().hex
            name, content = upload
            data = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="uploadfile"; '
                    f'filename="{name}"\r\nContent-Type: application/x-yaml\r\n\r\n'
                ).encode()
                + content
                + f"\r\n--{boundary}--\r\n".encode()
            )
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        context = None
        if url.startswith("https://"):
            context = ssl.create_default_context(cafile=self.config.ca_file or None)
        try:
            with urllib.request.urlopen(
                request, timeout=self.config.timeout_seconds, context=context
            ) as response:
                text = response.read().decode() or "{}"
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = str(json.loads(detail).get("message") or detail)
            raise PipelinesError(
                f"Kubeflow Pipelines {method} {path}: HTTP {exc.code}: {detail[:500]}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise PipelinesError(f"Kubeflow Pipelines at {self.base} unreachable: {exc}") from exc
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise PipelinesError(f"Kubeflow Pipelines {method} {path}: not JSON") from exc
        return answer if isinstance(answer, dict) else {}

    def _namespace(self, run_namespace: str) -> str:
        return (self.config.namespace or run_namespace) if self.config.multi_user else ""

    # --- pipelines, versions, experiments ---------------------------------------------------------

    def _version(self, pipeline: str, namespace: str) -> tuple[str, str]:
        """(pipeline id, version id) of the IR this operator ships, uploading it once."""
        path = pipelines_dir(self.config) / f"{pipeline}.yaml"
        try:
            ir = path.read_bytes()
        except OSError as exc:
            raise PipelinesError(
                f"compiled pipeline {pipeline} not found at {path}: {exc}"
            ) from exc
        version = f"{pipeline}-{hashlib.sha256(ir).hexdigest()[:12]}"
        key = (namespace, version)
        if key in self._versions:
            return self._versions[key]
        found = self._call(
            "GET", f"/pipelines/names/{pipeline}", {"namespace": namespace}, missing_ok=True
        )
        if found is None:
            body = {"name": pipeline, "display_name": pipeline, "description": "Slipway"}
            if namespace:
                body["namespace"] = namespace
            found = self._call("POST", "/pipelines", body=body)
        pipeline_id = str((found or {}).get("pipeline_id") or "")
        if not pipeline_id:
            raise PipelinesError(f"Kubeflow Pipelines returned no id for pipeline {pipeline}")
        listed = self._call(
            "GET",
            f"/pipelines/{pipeline_id}/versions",
            {"filter": _equals("name", version), "page_size": "10"},
        )
        versions = [
            v for v in (listed or {}).get("pipeline_versions") or [] if v.get("name") == version
        ]
        if versions:
            version_id = str(versions[0].get("pipeline_version_id") or "")
        else:
            query = {"name": version, "display_name": version, "pipelineid": pipeline_id}
            made = self._call("POST", "/pipelines/upload_version", query, upload=(path.name, ir))
            version_id = str((made or {}).get("pipeline_version_id") or "")
        if not version_id:
            raise PipelinesError(f"Kubeflow Pipelines returned no id for version {version}")
        self._versions[key] = (pipeline_id, version_id)
        return pipeline_id, version_id

    def _experiment(self, namespace: str) -> str:
        if namespace in self._experiments:
            return self._experiments[namespace]
        name = self.config.experiment
        listed = self._call(
            "GET",
            "/experiments",
            {"filter": _equals("display_name", name), "namespace": namespace},
        )
        found = [
            e for e in (listed or {}).get("experiments") or [] if e.get("display_name") == name
        ]
        if found:
            experiment = found[0]
        else:
            body: dict[str, Any] = {"display_name": name, "description": "Slipway runs"}
            if namespace:
                body["namespace"] = namespace
            experiment = self._call("POST", "/experiments", body=body) or {}
        experiment_id = str(experiment.get("experiment_id") or "")
        if not experiment_id:
            raise PipelinesError(f"Kubeflow Pipelines returned no id for experiment {name}")
        self._experiments[namespace] = experiment_id
        return experiment_id

    # --- the protocol -----------------------------------------------------------------------------

    def find(self, run: PipelineRun) -> RunStatus | None:
        namespace = self._namespace(run.namespace)
        matches: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {
                "filter": _equals("display_name", run.name),
                "namespace": namespace,
                "page_size": "100",
                "page_token": token,
            }
            page = self._call("GET", "/runs", query) or {}
            matches += [r for r in page.get("runs") or [] if r.get("display_name") == run.name]
            token = str(page.get("next_page_token") or "")
            if not token:
                break
        if not matches:
            return None
        # Two operators racing could have made two: always follow the oldest.
        oldest = min(matches, key=lambda r: (str(r.get("created_at") or ""), str(r["run_id"])))
        return run_status(oldest)

    def start(self, run: PipelineRun) -> RunStatus:
        found = self.find(run)
        if found is not None:
            return found
        namespace = self._namespace(run.namespace)
        pipeline_id, version_id = self._version(run.pipeline, namespace)
        body = {
            "display_name": run.name,
            "description": f"Slipway {run.pipeline} for {run.namespace}",
            "experiment_id": self._experiment(namespace),
            "pipeline_version_reference": {
                "pipeline_id": pipeline_id,
                "pipeline_version_id": version_id,
            },
            "runtime_config": {"parameters": run.parameters},
        }
        return run_status(self._call("POST", "/runs", body=body) or {})

    def status(self, run_id: str) -> RunStatus | None:
        found = self._call("GET", f"/runs/{run_id}", missing_ok=True)
        return run_status(found) if found is not None else None

    def cancel(self, run_id: str) -> None:
        current = self.status(run_id)
        if current is None or current.terminal:
            return
        self._call("POST", f"/runs/{run_id}:terminate", body={}, missing_ok=True)
