"""The test harness: run the real server as a subprocess on a free loopback port.

`ServerProcess` starts `python -m slipway_model_server` with a given environment, captures its
log to a file, and offers bounded polling helpers (`wait_live`, `wait_ready`). Nothing here is
mocked: the tests talk HTTP to onnxruntime serving a model that the test itself built.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ServerProcess:
    """One server process; `url` is its base URL, `log` the path of its captured output."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"server-{self.port}.log"
        full_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("SLIPWAY_") and key != "PREDICTIVE_UNIT_HTTP_PORT"
        }
        full_env.update(
            {
                "PYTHONPATH": str(SRC),
                "SLIPWAY_HOST": "127.0.0.1",
                "SLIPWAY_PORT": str(self.port),
                "SLIPWAY_MODEL_NAME": "mlp",
                "SLIPWAY_MODEL_VERSION": "3",
            }
        )
        full_env.update(env)
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "slipway_model_server"],
            env=full_env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def _poll(self, path: str, want: int, attempts: int = 600) -> httpx.Response:
        last: httpx.Response | None = None
        for _ in range(attempts):
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                last = self.client.get(path)
                if last.status_code == want:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered {want} (last: {last}):\n{self.log_text()}")

    def wait_live(self) -> None:
        self._poll("/v2/health/live", 200)

    def wait_ready(self) -> None:
        self._poll("/v2/health/ready", 200)

    def wait_load_attempted(self) -> httpx.Response:
        """Poll readiness until the load either succeeded or failed (no longer 'loading')."""
        self.wait_live()
        for _ in range(600):
            response = self.client.get("/v2/health/ready")
            if response.status_code == 200 or response.json().get("reason") != "model is loading":
                return response
            time.sleep(0.05)
        raise AssertionError(f"model still loading:\n{self.log_text()}")

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.client.close()
            self._log_handle.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.client.close()
        self._log_handle.close()


def infer_body(name: str, array: object, datatype: str = "FP32") -> dict[str, object]:
    """A V2 infer request with one input tensor."""
    arr = np.asarray(array)
    data = arr.ravel().tolist()
    return {
        "inputs": [{"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}]
    }


def batching_env(
    path: object, digest: str, window_ms: float, max_batch: int, eager: bool = False
) -> dict[str, str]:
    """Environment for a batching server. Eager off by default: tests that need requests to
    merge deterministically rely on the window (long) and max batch size (the rows sent)."""
    return {
        "SLIPWAY_MODEL_URI": str(path),
        "SLIPWAY_MODEL_SHA256": digest,
        "SLIPWAY_BATCHING": "true",
        "SLIPWAY_BATCH_WINDOW_MS": str(window_ms),
        "SLIPWAY_MAX_BATCH_SIZE": str(max_batch),
        "SLIPWAY_BATCH_EAGER": str(eager).lower(),
    }
