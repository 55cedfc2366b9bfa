"""The training loop: deterministic batches, DDP, checkpoint/resume, per-epoch metrics, NaN guard.

Batches are drawn from a permutation seeded by ``(seed, epoch)``, identical on every rank; rank r
takes rows ``r::world_size`` of each global batch and scales its summed loss by
``world_size / global batch`` so DDP's gradient average equals the single-process mean gradient.
A checkpoint records the model, optimizer, torch RNG, position (epoch, next batch, step) and the
epoch's running sums, so a resumed run continues bit-for-bit where the checkpoint left off.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint
from .config import TrainConfig
from .data import Split
from .distributed import Context, all_reduce_sum, broadcast_object, default_threads
from .evaluation import evaluate
from .models import build_model
from .snapshot import canonical_json

# Test hook: the process SIGKILLs itself right after this global step (simulates a node loss).
KILL_AT_STEP_ENV = "SLIPWAY_TEST_KILL_AT_STEP"


class TrainingError(RuntimeError):
    """Training cannot continue (for example the loss is no longer finite)."""


@dataclass
class Result:
    model: nn.Module
    history: list[dict[str, Any]]
    steps: int
    resumed_from_step: int
    timing: dict[str, float] = field(default_factory=dict)


def make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def run_key(cfg: TrainConfig, dataset_digest: str) -> str:
    """Identifies the configuration a checkpoint belongs to."""
    payload = canonical_json({"dataset": dataset_digest, "parameters": cfg.training_parameters()})
    return hashlib.sha256(payload).hexdigest()


def batches_for_epoch(
    n: int, batch_size: int, seed: int, epoch: int, world_size: int
) -> list[torch.Tensor]:
    """The global batches of one epoch; a last batch smaller than the world size is dropped."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator)
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(out) > 1 and len(out[-1]) < world_size:
        out.pop()
    return out


def train(
    cfg: TrainConfig,
    split: Split,
    dataset_digest: str,
    ctx: Context,
    on_epoch: Callable[[list[dict[str, Any]]], None] | None = None,
    log: Callable[[str], None] = print,
) -> Result:
    """Train, resuming from the newest valid checkpoint; return the unwrapped model and history."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(cfg.num_threads if cfg.num_threads > 0 else default_threads())
    torch.manual_seed(cfg.seed)
    mean, std = split.feature_stats()
    model = build_model(
        cfg.model_type, cfg.hyperparameters, split.input_shape, len(split.classes), mean, std
    ).to(ctx.device)
    optimizer = make_optimizer(cfg, model.parameters())
    key = run_key(cfg, dataset_digest)
    state = checkpoint.load_latest(cfg.checkpoint_uri, key, log) if ctx.is_main else None
    state = broadcast_object(state, ctx)
    epoch, next_batch, step = 0, 0, 0
    history: list[dict[str, Any]] = []
    sums = [0.0, 0.0, 0.0]  # loss sum, correct, rows: this epoch so far
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        epoch, next_batch, step = state["epoch"], state["next_batch"], state["step"]
        history, sums = list(state["history"]), list(state["sums"])
    resumed_from = step
    net: nn.Module = DistributedDataParallel(model) if ctx.enabled else model
    kill_at = int(os.environ.get(KILL_AT_STEP_ENV, "0") or 0)
    timing = {"data": 0.0, "compute": 0.0, "samples": 0.0}

    def save(epoch_: int, batch_: int) -> None:
        if ctx.is_main:
            snapshot = {
                "run_key": key,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "epoch": epoch_,
                "next_batch": batch_,
                "step": step,
                "history": history,
                "sums": sums,
            }
            checkpoint.save(cfg.checkpoint_uri, step, snapshot, cfg.keep_checkpoints)

    net.train()
    while epoch < cfg.epochs:
        batches = batches_for_epoch(
            len(split.x_train), cfg.batch_size, cfg.seed, epoch, ctx.world_size
        )
        for b in range(next_batch, len(batches)):
            started = time.perf_counter()
            rows = batches[b][ctx.rank :: ctx.world_size]
            xb = split.x_train[rows].to(ctx.device, non_blocking=True)
            yb = split.y_train[rows].to(ctx.device, non_blocking=True)
            loaded = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            out = net(xb)
            loss_sum = F.cross_entropy(out, yb, reduction="sum")
            stats = torch.stack(
                [
                    loss_sum.detach().double(),
                    (out.argmax(1) == yb).sum().double(),
                    torch.tensor(len(rows), dtype=torch.float64, device=ctx.device),
                ]
            )
            all_reduce_sum(stats, ctx)
            global_loss = float(stats[0] / stats[2])
            if not torch.isfinite(stats[0]):
                raise TrainingError(
                    f"loss is not finite ({global_loss}) at epoch {epoch + 1}, step {step + 1}; "
                    f"training stopped. Lower the learning rate (now {cfg.learning_rate}) "
                    "or check the data for extreme values"
                )
            (loss_sum * (ctx.world_size / len(batches[b]))).backward()
            optimizer.step()
            if ctx.device.type == "cuda":
                torch.cuda.synchronize(ctx.device)
            finished = time.perf_counter()
            timing["data"] += loaded - started
            timing["compute"] += finished - loaded
            timing["samples"] += len(batches[b])
            sums = [sums[0] + float(stats[0]), sums[1] + float(stats[1]), sums[2] + float(stats[2])]
            step += 1
            last = b == len(batches) - 1
            if last:
                history.append(_epoch_record(epoch, sums, model, split, ctx))
                if ctx.is_main:
                    log(_katib_line(history[-1]))
                    if on_epoch:
                        on_epoch(history)
                sums = [0.0, 0.0, 0.0]
                save(epoch + 1, 0)
            elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save(epoch, b + 1)
            if kill_at and step == kill_at and ctx.is_main:
                log(f"test hook {KILL_AT_STEP_ENV}={kill_at}: killing this process with SIGKILL")
                os.kill(os.getpid(), signal.SIGKILL)
        epoch, next_batch = epoch + 1, 0
    return Result(
        model=model, history=history, steps=step, resumed_from_step=resumed_from, timing=timing
    )


def _epoch_record(
    epoch: int, sums: list[float], model: nn.Module, split: Split, ctx: Context
) -> dict[str, Any]:
    val = evaluate(model, split.x_val, split.y_val, split.classes, ctx.device)
    rows = max(sums[2], 1.0)
    return {
        "epoch": epoch + 1,
        "loss": sums[0] / rows,
        "accuracy": sums[1] / rows,
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
    }


def _katib_line(record: dict[str, Any]) -> str:
    """Katib StdOut metrics collector format: ``name=value`` pairs on one line."""
    return (
        f"epoch={record['epoch']} loss={record['loss']:.6f} accuracy={record['accuracy']:.6f} "
        f"val_loss={record['val_loss']:.6f} val_accuracy={record['val_accuracy']:.6f}"
    )
