"""``python -m slipway_trainer``: verify data, train, evaluate, export, check parity, publish.

Outputs under ``--output-uri`` (written by rank 0 only):

* ``metrics.json``  per-epoch history (rewritten after every epoch), final held-out evaluation,
  parity report and throughput;
* ``model.pt``      the final weights (a torch ``state_dict``);
* ``model.onnx``    the exported model (input ``input`` [batch, *shape] float32, output ``logits``);
* ``metadata.json`` see ``metadata.build``; written last, so its presence means the run succeeded.

Exit status: 0 on success, 2 for configuration errors (unknown hyperparameter, bad option),
1 for everything else (digest mismatch, non-finite loss, failed parity check), with one
``error: ...`` line on stderr saying what went wrong.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from . import storage
from .config import TrainConfig, parse_config
from .models import HyperparameterError


def _on_epoch(cfg: TrainConfig, metrics_uri: str, history: list[dict[str, Any]]) -> None:
    """Rewrite metrics.json; append the epoch to the Katib metrics file when one is configured."""
    from .steps import write_json

    write_json(metrics_uri, {"epochs": history})
    if cfg.metrics_file:
        directory = os.path.dirname(cfg.metrics_file)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(cfg.metrics_file, "a") as handle:
            handle.write(json.dumps(history[-1], sort_keys=True) + "\n")


def run(cfg: TrainConfig, log: Any = None) -> dict[str, Any]:
    """Run the whole job; returns the metadata document (empty on ranks other than 0)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    from .distributed import barrier, setup, teardown
    from .engine import train
    from .steps import prepare, publish

    emit = log or (lambda msg: print(msg, flush=True))
    ctx = setup(cfg.device)
    try:
        snap, data = prepare(cfg)
        emit(f"dataset {snap.uri} digest {snap.digest} rows {snap.table.num_rows} verified")
        metrics_uri = storage.join(cfg.output_uri, "metrics.json")
        result = train(
            cfg,
            data,
            snap.digest,
            ctx,
            on_epoch=lambda history: _on_epoch(cfg, metrics_uri, history),
            log=emit,
        )
        meta: dict[str, Any] = {}
        if ctx.is_main:
            busy = result.timing["data"] + result.timing["compute"]
            throughput = {
                "samplesPerSecond": result.timing["samples"] / busy if busy else 0.0,
                "dataLoadingShare": result.timing["data"] / busy if busy else 0.0,
                "steps": result.steps,
                "resumedFromStep": result.resumed_from_step,
            }
            meta = publish(
                cfg,
                result.model,
                data,
                snap.digest,
                result.history,
                throughput,
                cfg.output_uri,
                ctx.world_size,
                ctx.device.type,
            )
            val = meta["metrics"]["validation"]
            emit(f"validation loss={val['loss']:.6f} accuracy={val['accuracy']:.6f}")
            emit(
                f"parity max_abs_diff={meta['parity']['maxAbsDiff']:.3g} "
                f"(atol {cfg.parity_atol}, rtol {cfg.parity_rtol}) passed"
            )
            emit(
                f"wrote model.onnx and metadata.json to {cfg.output_uri} "
                f"(fingerprint {meta['fingerprint']})"
            )
        barrier(ctx)
        return meta
    finally:
        teardown(ctx)


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, print_fingerprint = parse_config(argv)
    except (HyperparameterError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if print_fingerprint:
        from . import metadata
        from .snapshot import load

        snap = load(cfg.dataset_uri, cfg.dataset_digest or None)
        print(json.dumps(metadata.fingerprint(cfg, snap.digest), sort_keys=True))
        return 0
    try:
        run(cfg)
    except (HyperparameterError, ValueError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0
