"""What the operator benchmark reads while it runs: CPU and memory of processes, the API server's
own request counters, and the operator's reconcile counter.

CPU comes from /proc (user + system seconds), so the operator, kube-apiserver, etcd and the
garbage collector are each measured from outside, the same way in the operator's run and the
floor's.
"""

from __future__ import annotations

import os
import re
import ssl
import urllib.request
from pathlib import Path

from slipway.k8s import Cluster

# The kinds a ModelDeployment's reconcile touches (the API server's own lease and endpoint
# renewals are not the operator's and are left out).
_KINDS = "modeldeployments|seldondeployments|services|virtualservices|destinationrules|events"
_REQUESTS = re.compile(
    r'apiserver_request_total\{[^}]*resource="(' + _KINDS + r')"[^}]*'
    r'verb="([A-Z]+)"[^}]*\} (\S+)'
)
WRITES = ("POST", "PUT", "PATCH", "APPLY", "DELETE")
CALLS = (*WRITES, "GET", "LIST")  # everything but the long-running WATCH


def api_requests(cluster: Cluster, verbs: tuple[str, ...] = CALLS) -> float:
    """Requests with these verbs the API server has served on the kinds above (its own counter)."""
    creds = cluster.credentials()
    request = urllib.request.Request(
        creds["server"] + "/metrics", headers={"Authorization": f"Bearer {creds['token']}"}
    )
    context = ssl.create_default_context(cafile=creds["ca_path"])
    context.check_hostname = False
    with urllib.request.urlopen(request, context=context) as response:
        text = response.read().decode()
    return sum(float(m.group(3)) for m in _REQUESTS.finditer(text) if m.group(2) in verbs)


def api_writes(cluster: Cluster) -> float:
    return api_requests(cluster, WRITES)


def reconciled(port: int) -> float:
    """ModelDeployment reconciliations the operator has finished, from its own metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('slipway_reconcile_total{kind="ModelDeployment"')
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process spends between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}
