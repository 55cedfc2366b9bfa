"""The ``slipway`` command: run the operator, generate CRDs, manage the local control plane.

slipway run [--config FILE] [--namespace NS] [--standalone] [--priority N] [--verbose]
slipway crds [--out DIR] [--check]
slipway dev up [--operator] [--examples] [--load] [--rollout] [--standins] [--ingress-port N]
    | down | status | load [--model M] [--rate R] [--duration S]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path

from slipway.api import crdgen
from slipway.config import ConfigError, load_config


def _crds(args: argparse.Namespace) -> int:
    out = Path(args.out)
    generated = crdgen.generate()
    if args.check:
        stale = [
            name
            for name, text in generated.items()
            if not (out / name).exists() or (out / name).read_text() != text
        ]
        extra = (
            sorted(p.name for p in out.glob("*.yaml") if p.name not in generated)
            if out.exists()
            else []
        )
        if stale or extra:
            print(f"out of date in {out}: {stale + extra}; run `make generate`", file=sys.stderr)
            return 1
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in generated.items():
        (out / name).write_text(text)
        print(out / name)
    return 0


def _run(args: argparse.Namespace) -> int:
    from slipway.runner import run_operator

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 2
    if args.namespace:
        config = config.model_copy(update={"namespace": args.namespace})
    priority = args.priority if args.priority is not None else random.randint(1, 1_000_000)
    run_operator(config, standalone=args.standalone, priority=priority)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from slipway.devcluster import commands

    # `dev up` says what it applied in its own words; the client's per-object lines are noise here
    logging.getLogger("slipway.k8s").setLevel(logging.WARNING)
    try:
        return commands.main(args)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 1


def _tool(args: argparse.Namespace) -> int:
    from slipway.devcluster.binaries import tool_path

    try:
        print(tool_path(args.name))
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="slipway", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the operator")
    run.add_argument("--config", help="operator configuration file (or $SLIPWAY_CONFIG)")
    run.add_argument("--namespace", help="watch only this namespace (default: all)")
    run.add_argument("--standalone", action="store_true", help="no peering (single replica)")
    run.add_argument("--priority", type=int, help="peering priority (default: random)")
    run.add_argument("--verbose", action="store_true", help="debug logs (kopf's included)")
    run.set_defaults(func=_run)

    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument("--out", default="crds", help="output folder (default: crds)")
    crds.add_argument("--check", action="store_true", help="fail if the folder is out of date")
    crds.set_defaults(func=_crds)

    dev = sub.add_parser("dev", help="local control plane: etcd + kube-apiserver on loopback")
    dev.add_argument("action", choices=["up", "down", "status", "load"])
    dev.add_argument("--state", help="state folder (default: <cache>/dev)")
    dev.add_argument("--operator", action="store_true", help="up: also run the operator")
    dev.add_argument(
        "--examples",
        action="store_true",
        help="up: also apply examples/ and (with --operator) wait until they serve",
    )
    dev.add_argument("--examples-dir", help="up --examples: apply this folder instead of examples/")
    dev.add_argument(
        "--load", action="store_true", help="up: steady traffic through the ingress (background)"
    )
    dev.add_argument(
        "--rollout",
        action="store_true",
        help="up --examples: then serve the TuningSweep's best model, rolled out as a canary",
    )
    dev.add_argument(
        "--standins",
        action=argparse.BooleanOptionalAction,
        help="up: run the local Seldon and Istio ingress stand-ins (default: with --operator)",
    )
    dev.add_argument("--ingress-port", type=int, help="up: the ingress's port (default: 8080)")
    dev.add_argument("--model", default="digits", help="load: the model to call")
    dev.add_argument("--rate", type=float, default=20.0, help="load: requests per second")
    dev.add_argument("--duration", type=float, help="load: seconds (default: until Ctrl-C)")
    dev.set_defaults(func=_dev)

    tool = sub.add_parser("tool", help="print the path of a pinned tool, building it if needed")
    tool.add_argument("name", help="kubectl, helm, etcd, kube-apiserver, kube-controller-manager")
    tool.set_defaults(func=_tool)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["run", *(argv or sys.argv[1:])])
    if getattr(args, "verbose", False):
        logging.getLogger().setLevel(logging.DEBUG)
    return int(args.func(args))
