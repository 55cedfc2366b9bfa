"""`slipway dev up | status | down` as a newcomer runs them: real processes, nothing left behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import alive, port_open


def slipway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slipway", *args], capture_output=True, text=True, timeout=300
    )


def test_up_status_down_leaves_no_process_or_port(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    up = slipway("dev", "up", "--state", str(state))
    assert up.returncode == 0, up.stderr
    assert re.search(r"^installed \d+ CRDs$", up.stdout, re.M), up.stdout
    pids = json.loads((state / "pids.json").read_text())
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    server = yaml.safe_load((state / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
    port = int(server.rsplit(":", 1)[1])
    assert port_open(port)
    assert "certificate-authority-data" in (state / "kubeconfig").read_text()

    status = slipway("dev", "status", "--state", str(state))
    assert status.returncode == 0 and "kube-apiserver" in status.stdout

    down = slipway("dev", "down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    for pid in pids.values():
        assert not alive(pid)
    assert not port_open(port)
    assert slipway("dev", "status", "--state", str(state)).returncode == 1


def test_a_second_up_starts_nothing_new(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    assert slipway("dev", "up", "--state", str(state)).returncode == 0
    try:
        pids = json.loads((state / "pids.json").read_text())
        again = slipway("dev", "up", "--state", str(state))
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert json.loads((state / "pids.json").read_text()) == pids
    finally:
        slipway("dev", "down", "--state", str(state))
    assert os.path.exists(state / "logs" / "kube-apiserver.log")
