"""Trainer throughput benchmark: samples/s of the training step and the share spent loading data.

Runs the real training loop (``slipway_trainer.engine.train``) on a snapshot of builtin://digits
for the MLP and the CNN at two batch sizes, and prints a Markdown table plus one JSON line per
case (the median of ``--repeats`` runs). Time is split per step into data loading (index the
batch, move it to the device) and compute (forward, backward, optimizer step; CUDA synchronised);
evaluation and checkpoints are excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch

from slipway_trainer.config import TrainConfig
from slipway_trainer.dataset import ingest
from slipway_trainer.distributed import setup
from slipway_trainer.engine import train
from slipway_trainer.steps import prepare

CASES = [
    ("mlp", {"hidden": [128, 64]}),
    ("cnn", {"channels": [16, 32], "hidden": 64}),
]


def run_case(
    snapshot_uri: str,
    model_type: str,
    hparams: dict,
    batch: int,
    epochs: int,
    device: str,
    threads: int,
) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(
            dataset_uri=snapshot_uri,
            output_uri=out,
            model_type=model_type,
            hyperparameters=hparams,
            epochs=epochs,
            batch_size=batch,
            checkpoint_every=0,
            device=device,
            num_threads=threads,
        )
        snap, data = prepare(cfg)
        ctx = setup(device)
        started = time.perf_counter()
        result = train(cfg, data, snap.digest, ctx, log=lambda _msg: None)
        wall = time.perf_counter() - started
    timing = result.timing
    busy = timing["data"] + timing["compute"]
    return {
        "model": model_type,
        "batch": batch,
        "device": str(ctx.device),
        "epochs": epochs,
        "samples": int(timing["samples"]),
        "samplesPerSecond": timing["samples"] / busy,
        "dataShare": timing["data"] / busy,
        "wallSeconds": wall,
        "valAccuracy": result.history[-1]["val_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per case; the median is reported"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        snapshot_uri = ingest("builtin://digits", store, "digits", "bench").uri
        run_case(snapshot_uri, "cnn", CASES[1][1], 64, 1, args.device, args.threads)  # warm-up
        rows = []
        for model, hparams in CASES:
            for batch in args.batch_sizes.split(","):
                runs = [
                    run_case(
                        snapshot_uri,
                        model,
                        hparams,
                        int(batch),
                        args.epochs,
                        args.device,
                        args.threads,
                    )
                    for _ in range(args.repeats)
                ]
                rows.append(sorted(runs, key=lambda r: r["samplesPerSecond"])[len(runs) // 2])
    threads = torch.get_num_threads()
    print(
        f"\ntorch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{threads} torch threads, {args.epochs} epochs of builtin://digits (1437 training rows), "
        f"median of {args.repeats} runs\n"
    )
    print("| model | batch | device | samples/s | data loading share | val accuracy |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['batch']} | {r['device']} | {r['samplesPerSecond']:,.0f} "
            f"| {100 * r['dataShare']:.1f}% | {r['valAccuracy']:.3f} |"
        )
    print()
    for r in rows:
        print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    main()
