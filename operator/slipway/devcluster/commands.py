"""``slipway dev up | down | status``: the newcomer's one-command local environment."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from slipway.k8s import connect

from . import standins
from .cluster import DevCluster
from .install import apply_manifests, load_manifests
from .paths import default_state_dir, repo_root
from .thirdparty import pinned_crds

SELDON_CRD = Path("tests/fixtures/crds/machinelearning.seldon.io_seldondeployments.yaml")


def crd_folders(root: Path) -> list[Path]:
    """Slipway's generated CRDs and the third-party CRDs its children use: upstream's files at the
    versions pinned in tests/cluster/crds/pins.yaml (fetched into the cache on first use), and
    Seldon's schema, written in the repository because Seldon Core's module is not served."""
    return [root / "crds", root / SELDON_CRD, *pinned_crds(root)]


def _up(dev: DevCluster, args: argparse.Namespace) -> int:
    root = repo_root()
    started = time.monotonic()
    names = dev.start(crds=crd_folders(root))
    print(f"installed {len(names)} CRDs")
    cluster = connect(str(dev.kubeconfig), field_manager="slipway-dev")
    apply_manifests(cluster, load_manifests([root / "config" / "peering.yaml"]))
    if args.operator:
        dev.start_operator(root / "config" / "dev.yaml")
        print(f"operator running; log: {dev.state / 'logs' / 'operator.log'}")
    if args.standins if args.standins is not None else args.operator:
        url = standins.launch(dev, args.ingress_port)
        print(f"stand-ins for Seldon and Istio running; log: {dev.state / 'logs' / 'standins.log'}")
        print(f"ingress (Istio stand-in): {url}/v2/models/<name>/infer")
    if args.examples:
        for item in apply_manifests(cluster, load_manifests([root / "examples"])):
            print(f"applied {item}")
    print(f"control plane up in {time.monotonic() - started:.0f} s")
    print(f"export KUBECONFIG={dev.kubeconfig}")
    return 0


def _status(dev: DevCluster) -> int:
    running = dev.running()
    if not running:
        print("no local control plane running")
        return 1
    for name, pid in running.items():
        print(f"{name:<24} pid {pid}")
    for line in standins.status_lines(dev):
        print(line)
    print(f"KUBECONFIG={dev.kubeconfig}")
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
    print(f"unknown action {args.action}", file=sys.stderr)
    return 2
