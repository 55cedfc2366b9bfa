"""The operator benchmark's tables, in the README's Markdown, from the rows ``run.py`` measured."""

from __future__ import annotations

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


def breakdown_table(rows: list[dict[str, Any]]) -> list[str]:
    """Where the time goes while converging: CPU of each process, requests per object."""
    lines = [
        "| ModelDeployments | run | all children created (s) | last call returned (s) "
        "| client CPU (s) | kube-apiserver CPU (s) | etcd CPU (s) | garbage collector CPU (s) "
        "| API requests / object |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for name in ("operator", "floor"):
            run = row.get(name)
            if run is None:
                continue
            returned = f"{run['returned']:.1f}" if "returned" in run else "-"
            lines.append(
                f"| {row['n']} | {name} | {run['seconds']:.1f} | {returned} "
                f"| {_cpu(run, 'client')} | {_cpu(run, 'apiserver')} | {_cpu(run, 'etcd')} "
                f"| {_cpu(run, 'gc')} | {run['requests']:.1f} |"
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
        parts += [breakdown_table(rows), floor_calls(rows)]
    return "\n\n".join("\n".join(part) for part in parts)
