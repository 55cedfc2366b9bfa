"""``slipway dev up | down | status | load``: the newcomer's one-command local environment."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from slipway.backends.localpipelines import PIPELINES_VENV
from slipway.backends.localtraining import TRAINER_VENV
from slipway.k8s import Cluster, connect

from . import chain, load, prometheus, standins
from .cluster import CONTROL_PLANE, DevCluster
from .install import apply_manifests, load_manifests
from .paths import default_state_dir, repo_root, venv_python
from .thirdparty import pinned_crds

SELDON_CRD = Path("tests/fixtures/crds/machinelearning.seldon.io_seldondeployments.yaml")


def crd_folders(root: Path) -> list[Path]:
    """Slipway's generated CRDs and the third-party CRDs its children use: upstream's files at the
    versions pinned in tests/cluster/crds/pins.yaml (fetched into the cache on first use), and
    Seldon's schema, written in the repository because Seldon Core's module is not served."""
    return [root / "crds", root / SELDON_CRD, *pinned_crds(root)]


CHAIN_TIMEOUT_S = 900.0  # the examples serve in about a minute on 2 cores (caches warm)


def _operator_config(dev: DevCluster, base: Path, prometheus_url: str) -> Path:
    """config/dev.yaml with the URL of the Prometheus this cluster runs, in the state folder."""
    config = yaml.safe_load(base.read_text()) or {}
    config["analysis"] = "prometheus"
    config["prometheus"] = {**(config.get("prometheus") or {}), "url": prometheus_url}
    path = dev.state / "operator.yaml"
    path.write_text(f"# written by `slipway dev up` from {base.name}\n" + yaml.safe_dump(config))
    return path


def _prepare_environments(root: Path) -> None:
    """The pipelines' and the trainer's environments, which the local providers run the examples
    in: created here the first time (torch takes about 15 minutes), where the progress shows,
    rather than inside the operator's first run while `dev up` waits in silence."""
    for venv in (PIPELINES_VENV, TRAINER_VENV):
        venv_python(root, venv.name, venv.requirements)


def _control_plane(dev: DevCluster, root: Path) -> bool:
    """Start the control plane unless it runs; whether it was started now."""
    running = dev.running()
    if all(name in running for name in CONTROL_PLANE):
        print(f"control plane already running from {dev.state}")
        return False
    if running:
        raise RuntimeError(
            f"a cluster from {dev.state} is half running ({', '.join(running)}); "
            "run `slipway dev down` first"
        )
    names = dev.start(crds=crd_folders(root))
    print(f"installed {len(names)} CRDs")
    cluster = connect(str(dev.kubeconfig), field_manager="slipway-dev")
    apply_manifests(cluster, load_manifests([root / "config" / "peering.yaml"]))
    return True


def _up(dev: DevCluster, args: argparse.Namespace) -> int:
    """Start what is not running yet: a second ``up`` adds only what the first did not start."""
    root = repo_root()
    started = time.monotonic()
    fresh = _control_plane(dev, root)
    running = dev.running()
    cluster = connect(str(dev.kubeconfig), field_manager="slipway-dev")
    if args.operator and "operator" not in running:
        url = prometheus.dev_url(dev) or prometheus.launch(dev, dev.state / standins.TARGETS_FILE)
        print(f"Prometheus: {url} (scraping every model server)")
        dev.start_operator(_operator_config(dev, root / "config" / "dev.yaml", url))
        print(f"operator running; log: {dev.state / 'logs' / 'operator.log'}")
    ingress = standins.ingress_url(dev)
    if (args.standins if args.standins is not None else args.operator) and ingress is None:
        ingress = standins.launch(dev, args.ingress_port)
        print(f"stand-ins for Seldon and Istio running; log: {dev.state / 'logs' / 'standins.log'}")
        print(f"ingress (Istio stand-in): {ingress}/v2/models/<name>/infer")
    print(f"control plane up in {time.monotonic() - started:.0f} s")
    print(f"export KUBECONFIG={dev.kubeconfig}")
    if args.examples and not fresh:
        print("examples: applied when this cluster started (kubectl apply -f examples/ again)")
    elif args.examples:
        if args.operator:
            _prepare_environments(root)
        examples = load_manifests(
            [Path(args.examples_dir) if args.examples_dir else root / "examples"]
        )
        for item in apply_manifests(cluster, examples):
            print(f"applied {item}")
        if ingress is not None and args.operator:
            return _run_chain(dev, cluster, examples, ingress, args, started)
    if args.load and ingress is not None and "load" not in dev.running():
        _start_load(dev, ingress)
    return 0


def _start_load(dev: DevCluster, ingress: str) -> None:
    dev.spawn("load", [sys.executable, "-m", "slipway.devcluster.load", f"--url={ingress}"])
    print(f"steady load through the ingress; log: {dev.state / 'logs' / 'load.log'}")


def _run_chain(
    dev: DevCluster,
    cluster: Cluster,
    examples: list[dict[str, Any]],
    ingress: str,
    args: argparse.Namespace,
    started: float,
) -> int:
    """Wait until the examples serve, then start the load and roll out the sweep's best model."""
    print("waiting for the chain to serve (about a minute on 2 cores):")
    try:
        version, answer = chain.wait_until_serving(cluster, examples, ingress, CHAIN_TIMEOUT_S)
    except chain.ChainError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 1
    outputs = answer["outputs"][0]["data"]
    label = max(range(len(outputs)), key=outputs.__getitem__)
    took = time.monotonic() - started
    print(f"first prediction {took:.0f} s after `dev up`: version {version} answered {label}")
    if args.load:
        _start_load(dev, ingress)
    if args.rollout:
        try:
            chain.rollout_best_model(cluster, examples, CHAIN_TIMEOUT_S)
        except chain.ChainError as exc:
            print(f"slipway: {exc}", file=sys.stderr)
            return 1
        print("the canary is judged on Prometheus every 15 s: kubectl get md -w")
    return 0


def _status(dev: DevCluster) -> int:
    running = dev.running()
    if not running:
        print("no local control plane running")
        return 1
    logs = dev.state / "logs"
    urls = {"prometheus": prometheus.dev_url(dev)}
    for name, pid in running.items():
        url = f" {urls[name]}" if urls.get(name) else ""
        print(f"{name:<24} pid {pid:<8} running   log {logs / (name + '.log')}{url}")
    for name in sorted(set(dev.pids()) - set(running)):
        print(f"{name:<24} {'':<12} exited    log {logs / (name + '.log')}")
    for line in standins.status_lines(dev):
        print(line)
    print(f"KUBECONFIG={dev.kubeconfig}")
    return 0


def _load(dev: DevCluster, args: argparse.Namespace) -> int:
    ingress = standins.ingress_url(dev)
    if ingress is None:
        print("no ingress running: `slipway dev up --operator` first", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(load.run(ingress, args.model, args.rate, args.duration))
    return 0


def main(args: argparse.Namespace) -> int:
    dev = DevCluster(Path(args.state) if args.state else default_state_dir())
    if args.action == "up":
        return _up(dev, args)
    if args.action == "down":
        stopped = dev.stop()
        print("stopped " + (", ".join(stopped) if stopped else "nothing (not running)"))
        return 0
    if args.action == "status":
        return _status(dev)
    if args.action == "load":
        return _load(dev, args)
    print(f"unknown action {args.action}", file=sys.stderr)
    return 2
