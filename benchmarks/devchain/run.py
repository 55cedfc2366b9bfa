"""`make dev` benchmark: how long the local chain takes to its first prediction, and to a canary.

Each round runs ``slipway dev up --operator --examples --load --rollout`` as ``make dev`` does, on a
control plane of its own (a fresh state folder and local store, so nothing from an earlier run is
reused; binaries and environments cached), then waits until the canary is promoted or rolled back
and stops everything. From the objects' Ready conditions, the output of ``dev up`` and the local
runs' own records it reports, in seconds from the start of ``dev up``:

- control plane up; Dataset Ready; TrainingJob Succeeded; ModelDeployment Ready; the first
  prediction answered through the ingress; the canary's end;
- the baseline: the wall time of the two runs the first prediction waits on (ingestion and
  training, from their submission to their ``finished`` record), and the ratio of the time to the
  first prediction to it: what the rest of the chain (control plane, operator, stand-ins, model
  server start) adds over the work itself.

    python -m benchmarks.devchain.run [--rounds 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from slipway.devcluster.cluster import free_port
from slipway.k8s import connect

API = "slipway.dev/v1alpha1"
OUT = Path(__file__).with_name("results.md")
COLUMNS = [
    "control plane",
    "Dataset Ready",
    "TrainingJob Succeeded",
    "ModelDeployment Ready",
    "first prediction",
    "canary ended",
    "ingest + train runs",
    "first prediction / runs",
]


def _seconds(stamp: str, start: float) -> float:
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    return moment - start


def _ready_at(obj: dict[str, Any], start: float) -> float:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return _seconds(condition["lastTransitionTime"], start)
    raise RuntimeError(f"{obj['kind']} {obj['metadata']['name']} is not Ready")


def _run_seconds(store: Path, prefix: str) -> float:
    """Wall time of the local run named ``prefix``...: submission (its spec) to ``finished``."""
    [run] = [p for p in (store / "runs").iterdir() if p.name.startswith(prefix)]
    finished = json.loads((run / "state.json").read_text())["finished"]
    return _seconds(finished, (run / "spec.json").stat().st_mtime)


def one_round(workdir: Path) -> dict[str, float]:
    state, store = workdir / "dev", workdir / "store"
    env = {**os.environ, "SLIPWAY_LOCAL_STORE": str(store)}
    env.pop("KUBECONFIG", None)
    argv = [sys.executable, "-m", "slipway", "dev", "up", "--state", str(state), "--operator"]
    argv += ["--examples", "--load", "--rollout", "--ingress-port", str(free_port())]
    start = time.time()
    try:
        up = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1200)
        if up.returncode != 0:
            raise RuntimeError(f"dev up failed:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}")
        cluster = connect(str(state / "kubeconfig"), field_manager="bench")
        while True:
            md = cluster.get(API, "ModelDeployment", "default", "digits") or {}
            rollout = (md.get("status") or {}).get("rollout") or {}
            if rollout.get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(0.5)
        ended = _seconds(rollout["lastCheckTime"][:19] + "+0000", start)
        dataset = cluster.get(API, "Dataset", "default", "digits") or {}
        job = cluster.get(API, "TrainingJob", "default", "digits-cnn") or {}
        deployment = cluster.get(API, "ModelDeployment", "default", "digits") or {}
        first = float(re.findall(r"^first prediction (\d+) s", up.stdout, re.M)[0])
        runs = _run_seconds(store, "digits-g") + _run_seconds(store, "digits-cnn-g")
        row = {
            "control plane": float(re.findall(r"control plane up in (\d+) s", up.stdout)[0]),
            "Dataset Ready": _ready_at(dataset, start),
            "TrainingJob Succeeded": _ready_at(job, start),
            "ModelDeployment Ready": _ready_at(deployment, start),
            "first prediction": first,
            "canary ended": ended,
            "ingest + train runs": runs,
            "first prediction / runs": first / runs,
        }
        print(json.dumps({"rollout": rollout.get("phase"), **row}), flush=True)
        return row
    finally:
        subprocess.run([*argv[:4], "down", "--state", str(state)], capture_output=True, env=env)


def report(rows: list[dict[str, float]]) -> str:
    lines = [
        "# `make dev` benchmark: the local chain to its first prediction and to a canary",
        "",
        "Command: `make bench-dev` (`python -m benchmarks.devchain.run`); seconds from the start",
        "of `slipway dev up`, binaries and environments cached, a fresh control plane and local",
        f"store each round. Machine: {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}.",
        "",
        "| round | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for index, row in enumerate(rows, start=1):
        cells = [f"{row[c]:.2f}x" if "/" in c else f"{row[c]:.0f}" for c in COLUMNS]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="slipway-bench-dev-") as workdir:
            rows.append(one_round(Path(workdir)))
    text = report(rows)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
