"""Real parts for the rollout tests, and the parts the tests play.

- ``make_models``: tiny ONNX models built with the model server environment's own onnx package:
  two good MLPs (different digests) and a bad one that loads and warms up (one row) but fails
  inference on every real request (two rows: a Reshape to a fixed [1, 4] shape), so the server
  answers 500.
- ``Targets``: the file-discovery targets of the session's real Prometheus.
- ``SeldonPlayer`` plays Seldon's controller: for every SeldonDeployment of a namespace it runs
  the real model server (``images/model-server``) on loopback with the environment the operator
  rendered, adds it to Prometheus' targets, and reports the deployment ``Available`` once the
  server is ready and Prometheus scrapes it (Prometheus takes new targets up every few seconds:
  with intervals of a few seconds, a check must not run before its candidate is scraped at all);
  a deleted deployment's server is stopped.

Istio's part and the webhook receivers are in ``rollout_traffic.py``, the ModelDeployment helpers
in ``rollout_objects.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.devcluster.cluster import free_port
from slipway.devcluster.prometheus import PrometheusServer
from slipway.k8s import Cluster

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "images" / "model-server"
SELDON = "machinelearning.seldon.io/v1"
ISTIO = "networking.istio.io/v1"

MODELS_SCRIPT = r"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

def finish(graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()

def mlp(seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return finish(graph)

def bad():
    shape = np.array([1, 4], dtype=np.int64)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "fails-on-two-rows",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(shape, "shape")],
    )
    return finish(graph)

out = sys.argv[1]
for name, data in (("good-1", mlp(1)), ("good-2", mlp(2)), ("good-3", mlp(3)), ("bad", bad())):
    open(f"{out}/{name}.onnx", "wb").write(data)
"""


@dataclass(frozen=True)
class Model:
    uri: str
    digest: str

    @property
    def version(self) -> str:
        return "v" + self.digest.removeprefix("sha256:")[:8]

    def spec(self) -> dict[str, str]:
        return {"uri": self.uri, "digest": self.digest}


def make_models(python: Path, folder: Path) -> dict[str, Model]:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(python), "-c", MODELS_SCRIPT, str(folder)], check=True)
    models = {}
    for path in sorted(folder.glob("*.onnx")):
        digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        models[path.stem] = Model(path.resolve().as_uri(), digest)
    return models


class Targets:
    """Prometheus' file-discovery targets, shared by every test of the session."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.prometheus = prometheus
        self._groups: dict[str, tuple[str, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def set(self, key: str, address: str | None, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            before = dict(self._groups)
            if address is None:
                self._groups.pop(key, None)
            else:
                self._groups[key] = (address, labels or {})
            if self._groups != before:
                groups = [([address], labels) for address, labels in self._groups.values()]
                self.prometheus.set_targets(groups)

    def scraped(self, address: str) -> bool:
        """Whether Prometheus has scraped ``address`` successfully. Its discovery passes new
        targets on every few seconds, so a server can be ready well before it is scraped."""
        return any(
            t.get("health") == "up" and t.get("labels", {}).get("instance") == address
            for t in self.prometheus.active_targets()
        )


@dataclass
class Server:
    """One real model-server process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ready(self) -> bool:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            conn.request("GET", "/v2/health/ready")
            return conn.getresponse().status == 200
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class SeldonPlayer:
    """Plays Seldon's controller for one namespace (see the module docstring)."""

    def __init__(
        self, kube: Cluster, namespace: str, python: Path, targets: Targets, logs: Path
    ) -> None:
        self.kube, self.namespace, self.python = kube, namespace, python
        self.targets, self.logs = targets, logs
        self.servers: dict[str, Server] = {}  # SeldonDeployment name -> server
        self.versions: dict[str, str] = {}  # version id -> address
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="seldon-player", daemon=True)

    def __enter__(self) -> SeldonPlayer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for name, server in list(self.servers.items()):
            server.stop()
            self.targets.set(f"{self.namespace}/{name}", None)

    def _start(self, sdep: dict[str, Any]) -> Server:
        container = sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        port = free_port()
        env |= {
            "SLIPWAY_PORT": str(port),
            "SLIPWAY_HOST": "127.0.0.1",
            "SLIPWAY_SHUTDOWN_DELAY_S": "0",
            "SLIPWAY_DRAIN_TIMEOUT_S": "2",
        }
        name = sdep["metadata"]["name"]
        log = self.logs / f"{self.namespace}-{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(self.python), "-m", "slipway_model_server"],
                cwd=IMAGE / "src",
                env={**os.environ, **env, "PYTHONPATH": str(IMAGE / "src")},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Server(name, port, proc, log)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._sync()
            except Exception as exc:  # the API server restarting under a test: try again
                print(f"seldon player: {exc}")

    def _sync(self) -> None:
        live = {
            s["metadata"]["name"]: s
            for s in self.kube.list(SELDON, "SeldonDeployment", self.namespace)
            if not s["metadata"].get("deletionTimestamp")
        }
        for name, sdep in live.items():
            if name not in self.servers:
                self.servers[name] = self._start(sdep)
            server = self.servers[name]
            state = (sdep.get("status") or {}).get("state")
            if state == "Available" or not server.ready():
                continue
            labels = sdep["spec"]["predictors"][0]["labels"]
            self.versions[labels["version"]] = server.address
            self.targets.set(
                f"{self.namespace}/{name}", server.address, {"namespace": self.namespace}
            )
            if self.targets.scraped(server.address):
                self.kube.patch_status(
                    SELDON,
                    "SeldonDeployment",
                    self.namespace,
                    name,
                    {"state": "Available", "description": "played: the model server is ready"},
                )
        for name in [n for n in self.servers if n not in live]:
            self.servers.pop(name).stop()
            self.targets.set(f"{self.namespace}/{name}", None)


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}")
