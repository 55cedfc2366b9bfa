"""``python -m slipway_trainer``: verify the dataset, train, evaluate, export, check parity, publish.

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

import io
import json
import os
import sys
from typing import Any

from . import storage
from .config import TrainConfig, parse_config
from .models import HyperparameterError


def _write_json(uri: str, value: dict[str, Any]) -> None:
    storage.write_bytes(uri, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def run(cfg: TrainConfig, log: Any = None) -> dict[str, Any]:
    """Run the whole job; returns the metadata document (on every rank)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    from . import metadata
    from .data import split as make_split
    from .distributed import barrier, setup, teardown
    from .engine import train
    from .evaluation import evaluate
    from .export import describe, export_onnx, parity_check
    from .snapshot import load

    emit = log or (lambda msg: print(msg, flush=True))
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    ctx = setup(cfg.device)
    try:
        snap = load(cfg.dataset_uri, cfg.dataset_digest or None)
        emit(f"dataset {snap.uri} digest {snap.digest} rows {snap.table.num_rows} verified")
        split = make_split(snap.table, cfg.label_column, cfg.val_fraction, cfg.split_seed)
        metrics_uri = storage.join(cfg.output_uri, "metrics.json")

        def on_epoch(history: list[dict[str, Any]]) -> None:
            _write_json(metrics_uri, {"epochs": history})

        result = train(cfg, split, snap.digest, ctx, on_epoch=on_epoch, log=emit)
        meta: dict[str, Any] = {}
        if ctx.is_main:
            model = result.model.to("cpu").eval()
            final = evaluate(model, split.x_val, split.y_val, split.classes, torch.device("cpu"))
            emit(f"validation loss={final['loss']:.6f} accuracy={final['accuracy']:.6f}")
            onnx_bytes = export_onnx(model, split.input_shape, cfg.opset)
            parity = parity_check(model, onnx_bytes, split.x_val, cfg.parity_atol, cfg.parity_rtol)
            emit(f"parity max_abs_diff={parity['maxAbsDiff']:.3g} (atol {cfg.parity_atol}, rtol {cfg.parity_rtol}) passed")
            timing = result.timing
            busy = timing["data"] + timing["compute"]
            throughput = {
                "samplesPerSecond": timing["samples"] / busy if busy else 0.0,
                "dataLoadingShare": timing["data"] / busy if busy else 0.0,
                "steps": result.steps,
                "resumedFromStep": result.resumed_from_step,
            }
            metrics = {"train": result.history[-1] if result.history else {}, "validation": final}
            _write_json(metrics_uri, {"epochs": result.history, "validation": final, "parity": parity, "throughput": throughput})
            buffer = io.BytesIO()
            torch.save(model.state_dict(), buffer)
            storage.write_bytes(storage.join(cfg.output_uri, "model.pt"), buffer.getvalue())
            storage.write_bytes(storage.join(cfg.output_uri, "model.onnx"), onnx_bytes)
            meta = metadata.build(
                cfg, snap.digest, storage.sha256_bytes(onnx_bytes), describe(onnx_bytes), split.classes, metrics, parity,
                ctx.world_size, str(ctx.device.type),
            )
            _write_json(storage.join(cfg.output_uri, "metadata.json"), meta)
            emit(f"wrote model.onnx and metadata.json to {cfg.output_uri} (fingerprint {meta['fingerprint']})")
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
