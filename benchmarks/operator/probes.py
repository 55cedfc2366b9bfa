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


def operator_metric(port: int, prefix: str) -> float:
    """The sum of the operator's own metric samples whose line starts with ``prefix``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def reconciled(port: int) -> float:
    """ModelDeployment reconciliations the operator has finished, from its own metrics."""
    return operator_metric(port, 'slipway_reconcile_total{kind="ModelDeployment"')


def reconcile_seconds(port: int) -> float:
    """Seconds the operator's workers have spent in ModelDeployment reconciles."""
    return operator_metric(port, 'slipway_reconcile_time_seconds_sum{kind="ModelDeployment"')


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, every process), from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process, and the machine as a whole (``machine``), spend between
    ``start`` and ``stop``; ``other`` is what the machine spent outside the named processes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {"machine": machine_busy()} | {n: cpu_seconds(p) for n, p in self.pids.items()}

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> dict[str, float]:
        used = {name: value - self.before[name] for name, value in self._now().items()}
        used["other"] = used["machine"] - sum(v for n, v in used.items() if n != "machine")
        return used
