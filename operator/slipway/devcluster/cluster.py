"""Start, stop and inspect a local control plane whose processes outlive the command.

etcd and kube-apiserver (plus kube-controller-manager running only the garbage collector and
namespace controller, so owner references cascade and namespaces finish deleting) listen on free
loopback ports. Access is authenticated (a bearer token in group system:masters) and authorised by
RBAC. Everything lives in one state folder: data, logs, pids and the kubeconfig; ``stop`` ends
every process group it started and leaves no port behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from slipway.k8s import connect

from .binaries import Binaries, ensure_binaries
from .install import install_crds

COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "prometheus",
    "operator",
    "standins",
    "load",
)
CONTROL_PLANE = COMPONENTS[:2]  # without these there is no cluster to add a process to


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DevCluster:
    """A control plane rooted at ``state``."""

    state: Path
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def _pids(self) -> Path:
        return self.state / "pids.json"

    def _log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def pids(self) -> dict[str, int]:
        return json.loads(self._pids.read_text()) if self._pids.exists() else {}

    def running(self) -> dict[str, int]:
        """Components whose process is alive."""
        alive = {}
        for name, pid in self.pids().items():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            alive[name] = pid
        return alive

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Run ``argv`` as component ``name`` in a process group of its own, logging to
        ``logs/<name>.log``; ``stop`` ends it with the rest."""
        self._log(name).parent.mkdir(parents=True, exist_ok=True)
        with self._log(name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends it and its children
                env={**os.environ, **(env or {})},
            )
        self._children[proc.pid] = proc
        self._pids.write_text(json.dumps({**self.pids(), name: proc.pid}))

    def start(
        self,
        binaries: Binaries | None = None,
        timeout: float = 120.0,
        crds: Iterable[Path] = (),
    ) -> list[str]:
        """Start etcd, kube-apiserver and the controller manager; wait until the API is ready.

        The CRDs found in ``crds`` are installed before the controller manager starts: its garbage
        collector then knows their kinds from the start instead of after its next discovery pass
        (every 30 s), so children are collected as soon as their owner is deleted. Returns the
        names of the CRDs installed.
        """
        if self.running():
            raise RuntimeError(f"a cluster is already running from {self.state}; stop it first")
        bins = binaries or ensure_binaries()
        self.state.mkdir(parents=True, exist_ok=True)
        self._pids.unlink(missing_ok=True)
        # Every `up` starts from an empty cluster: no objects or peering records from a past run.
        shutil.rmtree(self.state / "etcd", ignore_errors=True)
        pki = self.state / "pki"
        pki.mkdir(exist_ok=True)
        token = secrets.token_hex(24)
        (pki / "token.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        key = pki / "service-account.key"
        if not key.exists():
            subprocess.run(
                ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
            )
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.spawn(
            "etcd",
            [
                str(bins.etcd),
                f"--data-dir={self.state / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self.spawn(
            "kube-apiserver",
            [
                str(bins.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={self.state / 'serving'}",
                "--service-cluster-ip-range=10.96.0.0/16",  # room for thousands of Services
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--authorization-mode=RBAC",
                f"--token-auth-file={pki / 'token.csv'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--profiling=false",
                "--v=1",
            ],
        )
        try:
            self._write_kubeconfig(api_port, token)
            self._wait_ready(api_port, token, timeout)
            installed = install_crds(
                connect(str(self.kubeconfig), field_manager="slipway-dev"), crds
            )
        except BaseException:
            # A half-started cluster (a CRD the API server refuses, a timeout) is stopped, not
            # left running without anyone holding its pids.
            self.stop()
            raise
        if bins.kube_controller_manager is not None:
            self.spawn(
                "kube-controller-manager",
                [
                    str(bins.kube_controller_manager),
                    f"--kubeconfig={self.kubeconfig}",
                    "--controllers=garbage-collector-controller,namespace-controller",
                    "--leader-elect=false",
                    "--secure-port=0",
                    "--concurrent-gc-syncs=20",
                ],
            )
        return installed

    def _ca_data(self) -> str | None:
        cert = self.state / "serving" / "apiserver.crt"
        return base64.b64encode(cert.read_bytes()).decode() if cert.exists() else None

    def _write_kubeconfig(self, port: int, token: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "slipway-dev",
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "insecure-skip-tls-verify": True,
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [
                {"name": "slipway-dev", "context": {"cluster": "slipway-dev", "user": "admin"}}
            ],
            "current-context": "slipway-dev",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _wait_ready(self, port: int, token: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/readyz", headers={"Authorization": f"Bearer {token}"}
        )
        last = ""
        while time.monotonic() < deadline:
            if not self.running().get("kube-apiserver"):
                break
            try:
                with urllib.request.urlopen(request, context=insecure, timeout=5) as response:
                    if response.status == 200:
                        self._pin_serving_certificate(port, token)
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        self.stop()
        tail = self._log("kube-apiserver").read_text(errors="replace").splitlines()[-20:]
        raise RuntimeError(
            f"kube-apiserver did not become ready ({last}); last log lines:\n" + "\n".join(tail)
        )

    def _pin_serving_certificate(self, port: int, token: str) -> None:
        """Trust the apiserver's self-signed certificate instead of skipping verification."""
        ca = self._ca_data()
        if ca is None:
            return
        config = yaml.safe_load(self.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        cluster.pop("insecure-skip-tls-verify", None)
        cluster["certificate-authority-data"] = ca
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def start_operator(self, config: Path | None = None) -> None:
        """Run ``slipway run`` against this cluster as a background process."""
        args = ["--config", str(config)] if config else []
        self.spawn(
            "operator",
            [sys.executable, "-m", "slipway", "run", *args],
            env={"KUBECONFIG": str(self.kubeconfig)},
        )

    def start_standins(self, port: int, python: Path) -> None:
        """Run the Seldon and Istio ingress stand-ins (``standins.py``) as a background process;
        the model servers they start share its process group, so ``stop`` ends them too."""
        self.spawn(
            "standins",
            [
                sys.executable,
                "-m",
                "slipway.devcluster.standins",
                f"--kubeconfig={self.kubeconfig}",
                f"--state={self.state}",
                f"--port={port}",
                f"--python={python}",
            ],
        )

    def stop(self, timeout: float = 15.0) -> list[str]:
        """End every process group this cluster started, newest first; returns their names."""
        stopped = []
        for name, pid in reversed(list(self.pids().items())):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            if not self._wait_exit(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
            stopped.append(name)
        self._pids.unlink(missing_ok=True)
        return stopped

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        proc = self._children.get(pid)
        if proc is not None:  # started by this process: reap it, or it lingers as a zombie
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False
