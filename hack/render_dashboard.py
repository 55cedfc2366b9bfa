#!/usr/bin/env python3
"""Draw the ModelDeployment dashboard's panels from a real run, as a PNG for the README.

Grafana is not available here, so this draws what its panels would show: the results of the
dashboard's own PromQL, as range queries over a real run. The run is the dashboard test
(tests/integration/test_monitoring.py: real operator, model servers, ingress traffic, a Canary
rollout promoted by analysis, a real Prometheus), which writes the panels' results when asked:

    SLIPWAY_DASHBOARD_DUMP=/tmp/dashboard.json \\
      .venv/bin/pytest tests/integration/test_monitoring.py -k dashboard
    "$(hack/venv.sh docs hack/requirements-docs.txt)/bin/python" hack/render_dashboard.py \\
      /tmp/dashboard.json docs/images/modeldeployment-dashboard.png

matplotlib lives in its own environment (hack/venv.sh), not in the operator's.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SKIP = {"Ready"}  # a single stat: said in the title instead
TIMELINES = {"Rollout phase"}
STEP_S = 2.0  # the range queries' step (tests/integration/test_monitoring.py)


def legend(metric: dict[str, str], expr: str) -> str:
    keys = [k for k in ("role", "version", "code", "strategy", "candidate", "phase") if k in metric]
    text = " ".join(metric[k] for k in keys) or "value"
    if expr.startswith("histogram_quantile(0.5,"):
        text = "p50 " + text
    elif expr.startswith("histogram_quantile(0.99,"):
        text = "p99 " + text
    return text


def timeline(ax: Any, data: list[dict[str, Any]], start: float) -> None:
    """A state timeline, as Grafana draws one: a bar per state while its series is 1."""
    for row, series in enumerate(data):
        times = [float(t) - start for t, v in series["values"] if float(v) == 1]
        spans = [(t, STEP_S) for t in times]
        ax.broken_barh(spans, (row - 0.35, 0.7), label=legend(series["metric"], ""))
    ax.set_yticks(range(len(data)), [s["metric"].get("phase", "?") for s in data], fontsize=8)


def draw(dump: dict[str, Any], out: Path) -> None:
    panels: dict[str, list[dict[str, Any]]] = {}
    for entry in dump["panels"]:
        if entry["title"] not in SKIP:
            panels.setdefault(entry["title"], []).append(entry)
    columns = 2
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(13, 3.1 * rows), squeeze=False)
    start = min(
        float(v[0])
        for entries in panels.values()
        for e in entries
        for s in e["data"]
        for v in s["values"]
    )
    for ax, (title, entries) in zip(axes.flat, panels.items(), strict=False):
        if title in TIMELINES:
            timeline(ax, entries[0]["data"], start)
        for entry in entries if title not in TIMELINES else []:
            for series in entry["data"]:
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ax.plot(xs, ys, label=legend(series["metric"], entry["expr"]), linewidth=1.4)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("seconds into the run", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", ncol=2, framealpha=0.6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"Slipway / ModelDeployment {dump['namespace']}/{dump['name']}: the dashboard's PromQL "
        "over a real run (drawn with matplotlib, not Grafana)",
        fontsize=11,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    draw(json.loads(Path(argv[0]).read_text()), Path(argv[1]))
    print(f"wrote {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
