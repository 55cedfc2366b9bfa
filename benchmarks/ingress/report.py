"""The benchmark's report: a markdown table per target, the ratios, and the machine it ran on.

Each target's figures pool its rounds: requests per second is every counted request over the
summed measured seconds, p50 and p99 are taken over every counted latency. The per-round rows
follow, so a reader can see how much the rounds of one target disagree (machine noise) next to
how much the two targets differ.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from .load import Segment, percentile

DIRECT, INGRESS = "direct", "ingress"
LABELS = {DIRECT: "straight to the model server", INGRESS: "through the ingress stand-in"}
PROCESSES = ("model server", "ingress", "load generator")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    return (
        f"{cores} CPU cores ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; 1-minute load average {load:.2f} as it began"
    )


def _pooled(segments: list[Segment]) -> Segment:
    pooled = Segment(segments[0].target, sum(s.duration_s for s in segments))
    for s in segments:
        pooled.latencies_ms += s.latencies_ms
        pooled.errors += s.errors
        for name, used in s.cpu_s.items():
            pooled.cpu_s[name] = pooled.cpu_s.get(name, 0.0) + used
    return pooled


def _cpu_per_request(segment: Segment) -> str:
    count = max(len(segment.latencies_ms), 1)
    return " / ".join(f"{segment.cpu_s.get(name, 0.0) * 1000 / count:.2f}" for name in PROCESSES)


def _row(label: str, s: Segment) -> str:
    return (
        f"| {label} | {len(s.latencies_ms)} | {s.rps:.0f} | "
        f"{percentile(s.latencies_ms, 50):.1f} | {percentile(s.latencies_ms, 99):.1f} | "
        f"{s.errors} | {_cpu_per_request(s)} |"
    )


def render(segments: list[Segment], command: str, setting: str, machine_line: str) -> str:
    """The whole ``results.md``."""
    direct = _pooled([s for s in segments if s.target == DIRECT])
    ingress = _pooled([s for s in segments if s.target == INGRESS])
    head = (
        "| target | requests | req/s | p50 ms | p99 ms | errors "
        "| CPU ms per request: server / ingress / client |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )

    def ratio(f: float, g: float) -> str:
        return f"{f / g:.2f}" if g else "n/a"

    p50 = (percentile(ingress.latencies_ms, 50), percentile(direct.latencies_ms, 50))
    p99 = (percentile(ingress.latencies_ms, 99), percentile(direct.latencies_ms, 99))
    rounds = [_row(f"round {i // 2 + 1}: {LABELS[s.target]}", s) for i, s in enumerate(segments)]
    return "\n".join(
        [
            "# Ingress benchmark: the Istio ingress stand-in against the model server directly",
            "",
            f"Command: {command}",
            "",
            f"Machine: {machine_line}.",
            "",
            setting,
            "",
            head,
            _row(LABELS[DIRECT], direct),
            _row(LABELS[INGRESS], ingress),
            f"| ratio ingress / direct | | {ratio(ingress.rps, direct.rps)} "
            f"| {ratio(*p50)} | {ratio(*p99)} | | |",
            "",
            "Each round, in the order run:",
            "",
            head,
            *rounds,
            "",
        ]
    )
