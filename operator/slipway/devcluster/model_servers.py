"""Model-server processes for the local Seldon stand-in: what a predictor's pod would run.

``plan_predictors`` reads a SeldonDeployment the way Seldon Core v1 does: each predictor's graph
node names the container to run, and the pod labels are Seldon's (its own ids, then the predictor's
``labels``, then the component spec's metadata labels; the SeldonDeployment's own labels do not
reach the pods). ``ModelServer`` runs that container's command locally: the real model server
(``images/model-server``, package ``slipway_model_server``) from its own virtual environment, with
the environment the operator rendered, except that it listens on a free loopback port. A
``pvc://<claim>/<path>`` model is read from ``<store>/pvc/<claim>/<path>``, the folder that local
pipelines write to with the same convention.

Locally a predictor is one process whatever its ``replicas``: enough to serve and to route, and
two CPU cores have no room for more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .cluster import free_port
from .paths import cache_dir, repo_root, venv_python
from .routing import Endpoint

log = logging.getLogger("slipway.standins.seldon")

SERVER_PACKAGE = "slipway_model_server"
LOADING = "model is loading"  # the model server's readiness reason while it loads


def model_server_python(root: Path | None = None) -> Path:
    """The model server environment's interpreter, created once by ``hack/venv.sh``."""
    image = "images/model-server"
    return venv_python(
        root or repo_root(),
        "model-server",
        (f"{image}/requirements.txt", f"{image}/requirements-test.txt"),
    )


def default_store() -> Path:
    """Where local ``pvc://`` claims live: ``$SLIPWAY_LOCAL_STORE`` (the variable that sets the
    operator's ``localStore`` too), else ``<cache>/local-store``."""
    explicit = os.environ.get("SLIPWAY_LOCAL_STORE")
    return Path(explicit) if explicit else cache_dir() / "local-store"


def local_model_uri(uri: str, store: Path) -> str:
    """``pvc://<claim>/<path>`` as a ``file://`` URI under ``<store>/pvc``; other URIs as given."""
    if uri.startswith("pvc://"):
        return (store / "pvc" / uri.removeprefix("pvc://")).resolve().as_uri()
    return uri


@dataclass(frozen=True)
class ServerSpec:
    """One predictor's model server, as planned from its SeldonDeployment."""

    namespace: str
    deployment: str
    predictor: str
    container: str
    labels: dict[str, str]
    env: dict[str, str]
    grace_s: float = 45.0
    probe_period_s: float = 5.0
    probe_failures: int = 3

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.deployment, self.predictor)

    @property
    def fingerprint(self) -> str:
        """Changes when what the process runs changes (not with ``replicas``)."""
        body = json.dumps([self.container, self.labels, self.env], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    """A predictor: its server, or why the stand-in cannot run it."""

    key: tuple[str, str, str]
    spec: ServerSpec | None = None
    problem: str = ""


def _pod_labels(
    sdep: str, predictor: dict[str, Any], component: dict[str, Any], container: str
) -> dict[str, str]:
    labels = {
        "seldon-deployment-id": sdep,
        "app": f"{sdep}-{predictor.get('name', '')}-0-{container}",
        "fluentd": "true",
    }
    labels |= predictor.get("labels") or {}
    labels |= (component.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def plan_predictors(sdep: dict[str, Any]) -> list[Plan]:
    """One plan per predictor of a SeldonDeployment."""
    meta = sdep.get("metadata") or {}
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    plans = []
    for predictor in (sdep.get("spec") or {}).get("predictors") or []:
        key = (ns, name, str(predictor.get("name", "")))
        node = str((predictor.get("graph") or {}).get("name", ""))
        found = [
            (component, container)
            for component in predictor.get("componentSpecs") or []
            for container in ((component.get("spec") or {}).get("containers") or [])
            if container.get("name") == node
        ]
        if not found:
            plans.append(Plan(key, problem=f"no container named after graph node {node!r}"))
            continue
        component, container = found[0]
        env = {
            str(e["name"]): str(e.get("value", ""))
            for e in container.get("env") or []
            if "valueFrom" not in e
        }
        if "SLIPWAY_MODEL_URI" not in env:
            plans.append(
                Plan(
                    key,
                    problem=f"container {node} has no SLIPWAY_MODEL_URI: the local Seldon "
                    "stand-in runs only Slipway's model server",
                )
            )
            continue
        probe = container.get("readinessProbe") or {}
        pod = component.get("spec") or {}
        spec = ServerSpec(
            namespace=ns,
            deployment=name,
            predictor=key[2],
            container=node,
            labels=_pod_labels(name, predictor, component, node),
            env=env,
            grace_s=float(pod.get("terminationGracePeriodSeconds", 30)),
            probe_period_s=float(probe.get("periodSeconds", 5)),
            probe_failures=int(probe.get("failureThreshold", 3)),
        )
        plans.append(Plan(key, spec))
    return plans


STARTING, READY, FAILED, EXITED = "Starting", "Ready", "Failed", "Exited"


@dataclass
class ModelServer:
    """One running model-server process and what its probes last said."""

    spec: ServerSpec
    log_path: Path
    port: int = field(default_factory=free_port)
    phase: str = STARTING
    reason: str = "starting the model server process"
    proc: asyncio.subprocess.Process | None = None
    ready_since: float | None = None
    _next_probe: float = 0.0
    _failures: int = 0
    _answered: bool = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self) -> Endpoint:
        return Endpoint(self.spec.namespace, self.spec.labels, self.port, self.spec.deployment)

    async def start(self, python: Path, source: Path, store: Path) -> None:
        """Start the process with the rendered environment, on this loopback port."""
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLIPWAY_", "PREDICTIVE_UNIT_")) and k != "PYTHONPATH"
        }
        env = dict(self.spec.env)
        env["SLIPWAY_MODEL_URI"] = local_model_uri(env["SLIPWAY_MODEL_URI"], store)
        port = str(self.port)
        env |= {
            "SLIPWAY_PORT": port,
            "SLIPWAY_HOST": "127.0.0.1",
            # what Seldon tells every predictive unit
            "PREDICTIVE_UNIT_HTTP_PORT": port,
            "PREDICTIVE_UNIT_ID": self.spec.container,
            "PREDICTOR_ID": self.spec.predictor,
            "SELDON_DEPLOYMENT_ID": self.spec.deployment,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            header = f"--- {time.strftime('%H:%M:%S')} starting on port {port}\n"
            out.write(header.encode())
            out.flush()
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    str(python),
                    "-m",
                    SERVER_PACKAGE,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**inherited, **env, "PYTHONPATH": str(source)},
                    cwd=str(self.log_path.parent),
                )
            except OSError as exc:  # a missing interpreter: reported like a crash, retried
                self.phase, self.reason = EXITED, f"cannot start the model server: {exc}"
                log.error("%s/%s: %s", self.spec.namespace, self.spec.deployment, self.reason)
                return
        log.info(
            "Started model server %s/%s (%s) pid %d on port %d",
            self.spec.namespace,
            self.spec.deployment,
            self.spec.labels.get("version", "?"),
            self.proc.pid,
            self.port,
        )

    def _last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            if lines and not lines[-1].startswith("---"):
                return lines[-1][-300:]
        return ""

    async def probe(self, session: aiohttp.ClientSession) -> None:
        """Update ``phase`` from the process and its readiness endpoint, at the probe's period."""
        if self.proc is None or self.phase == EXITED:
            return
        if self.proc.returncode is not None:
            self.phase = EXITED
            line = self._last_log_line()
            self.reason = f"model server exited with status {self.proc.returncode}" + (
                f": {line}" if line else ""
            )
            self.ready_since = None
            log.warning("%s/%s: %s", self.spec.namespace, self.spec.deployment, self.reason)
            return
        now = time.monotonic()
        if self.phase == READY and now < self._next_probe:
            return
        self._next_probe = now + self.spec.probe_period_s
        try:
            async with session.get(
                self.url + "/v2/health/ready", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._failures += 1
            if self._answered and self._failures >= self.spec.probe_failures:
                self._set(FAILED, f"readiness probe failed {self._failures} times: {exc!r}")
            return
        self._answered, self._failures = True, 0
        if status == 200:
            self._set(READY, "")
            return
        try:
            reason = str(json.loads(body).get("reason") or f"not ready (HTTP {status})")
        except (ValueError, AttributeError):
            reason = f"not ready (HTTP {status})"
        self._set(STARTING if reason == LOADING else FAILED, reason)

    def _set(self, phase: str, reason: str) -> None:
        if phase != self.phase:
            log.info(
                "%s/%s %s: %s%s",
                self.spec.namespace,
                self.spec.deployment,
                self.spec.labels.get("version", "?"),
                phase,
                f" ({reason})" if reason else "",
            )
        if phase == READY and self.phase != READY:
            self.ready_since = time.monotonic()
        elif phase != READY:
            self.ready_since = None
        self.phase, self.reason = phase, reason

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the pod's termination grace period, as the kubelet does."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.spec.grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info(
            "Stopped model server %s/%s pid %d", self.spec.namespace, self.spec.deployment, proc.pid
        )
