"""The operator benchmark's tables, in the README's Markdown, from the rows ``run.py`` measured."""

from __future__ import annotations

import os
from typing import Any


def _cpu(run: dict[str, Any], name: str) -> str:
    value = run["cpu"].get(name)
    return "-" if value is None else f"{value:.1f}"


def main_table(rows: list[dict[str, Any]], idle: float, resync: float) -> list[str]:
    lines = [
        "| ModelDeployments | all children created (s) | floor (s) | operator / floor "
        "| operator CPU (s) | kube-apiserver CPU (s) | etcd CPU (s) "
        f"| reconciles / writes while idle ({idle:.0f} s, resync every {resync:.0f} s) "
        "| writes on operator restart | operator RSS (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        op, floor = row["operator"], row.get("floor")
        floor_s = f"{floor['seconds']:.1f}" if floor else "-"
        ratio = f"{op['seconds'] / floor['seconds']:.2f}x" if floor else "-"
        lines.append(
            f"| {row['n']} | {op['seconds']:.1f} | {floor_s} | {ratio} "
            f"| {_cpu(op, 'client')} | {_cpu(op, 'apiserver')} | {_cpu(op, 'etcd')} "
            f"| {op['idle_reconciles']:.0f} / {op['idle_writes']:.0f} "
            f"| {op['restart_writes']:.0f} | {op['rss']:.0f} |"
        )
    return lines


def breakdown_table(rows: list[dict[str, Any]], cores: int) -> list[str]:
    """Where the time goes while converging: the reconciles and how busy kopf's workers were,
    the CPU of each process and of the machine, and the API requests per object."""
    lines = [
        "| ModelDeployments | run | all children created (s) | reconciles | mean reconcile (ms) "
        "| busy workers (mean) | client CPU (s) | kube-apiserver CPU (s) | etcd CPU (s) "
        "| garbage collector CPU (s) | bench CPU (s) | other CPU (s) "
        f"| machine busy (of {cores} cores) | API requests / object |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for name in ("operator", "floor"):
            run = row.get(name)
            if run is None:
                continue
            count, spent, wall = run["reconciles"], run["reconcile_seconds"], run["seconds"]
            mean = f"{1000 * spent / count:.0f}" if count else "-"
            busy = f"{spent / wall:.1f} of {run['workers']}"
            machine = run["cpu"]["machine"] / (wall * cores)
            lines.append(
                f"| {row['n']} | {name} | {wall:.1f} | {count:.0f} | {mean} | {busy} "
                f"| {_cpu(run, 'client')} | {_cpu(run, 'apiserver')} | {_cpu(run, 'etcd')} "
                f"| {_cpu(run, 'gc')} | {_cpu(run, 'bench')} | {_cpu(run, 'other')} "
                f"| {machine:.0%} | {run['requests']:.1f} |"
            )
    return lines


def floor_calls(rows: list[dict[str, Any]]) -> list[str]:
    """The calls the floor made per object, as it counted them (every variant, with its count)."""
    lines = []
    for row in rows:
        floor = row.get("floor")
        if floor is None:
            continue
        lines.append(
            f"Floor at {row['n']}: {floor['workers']} worker threads (kopf's max_workers); "
            "after the bench's CREATE modeldeployments, per object:"
        )
        for calls, count in floor["variants"]:
            lines.append(f"  {count} x [{', '.join(calls)}]")
    return lines


def tables(rows: list[dict[str, Any]], idle: float, resync: float) -> str:
    parts = [main_table(rows, idle, resync)]
    if any("floor" in row for row in rows):
        parts += [breakdown_table(rows, os.cpu_count() or 1), floor_calls(rows)]
    return "\n\n".join("\n".join(part) for part in parts)
