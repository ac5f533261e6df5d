"""One epoch of training as functions of a trainer's state: the epoch's SGD steps with
progress, step checkpoints and stop requests (:func:`train_epoch`), one step
(:func:`train_step`), and each epoch's random state (:func:`seed_epoch`).

The state is the :class:`~rmlc.train.trainer.Trainer` (its attributes listed by
:class:`EpochState`); the trainer decides when an epoch runs and what follows it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from rmlc.losses import LossEntry, MultiLabelLoss
from rmlc.losses.dynamics import ramp_statistics
from rmlc.train.config import TrainConfig
from rmlc.train.data import BatchPreparation, TrainingData
from rmlc.train.distributed import DistributedContext
from rmlc.train.loading import batch_loader
from rmlc.train.optimization import autocast, set_learning_rate
from rmlc.train.sampling import ShardedSampler
from rmlc.train.targets import SparseTargets

__all__ = [
    "REPORT_EVERY",
    "EpochState",
    "Position",
    "StopAfterStep",
    "seed_epoch",
    "train_epoch",
    "train_step",
]

REPORT_EVERY = 10  # steps between progress updates (each one waits for the device)


class StopAfterStep(Exception):
    """Raised inside the loop, at a step boundary, when a stop was requested."""


@dataclass
class Position:
    """Where training stands: the epoch in progress and the steps done within it."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


class EpochState(Protocol):
    """What the epoch's functions read and update: a trainer's state."""

    config: TrainConfig
    context: DistributedContext
    device: torch.device
    data: TrainingData
    out: Path
    position: Position
    steps_in_epoch: int  # steps of the epoch in progress (all of them, not the remaining)
    network: nn.Module  # the module trained (DDP-wrapped, compiled as configured)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    loss_fn: MultiLabelLoss
    loss_entry: LossEntry
    loss_generator: torch.Generator
    prepare: BatchPreparation
    targets: SparseTargets  # (N, m) of every training sample
    sample_weights: torch.Tensor  # (N,)
    dynamics: list[dict[str, Any]]
    saved_rng: dict[str, torch.Tensor] | None  # random states to restore mid-epoch

    def step(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor: ...

    def stop_due(self, steps_this_epoch: int) -> bool: ...

    def save_checkpoint(self, path: Path) -> None: ...


def train_epoch(state: EpochState, epoch: int, sampler: ShardedSampler) -> dict[str, Any]:
    """The epoch's remaining SGD steps (``sampler``: the epoch's batches of this process),
    with progress, step checkpoints and stop requests (:class:`StopAfterStep`); returns
    the epoch's loss, rate and throughput."""
    config, position = state.config, state.position
    sampler.set_epoch(epoch, position.step_in_epoch)
    steps = state.steps_in_epoch = sampler.steps_per_epoch()
    # The loader draws a seed from the global generator when its iterator is made: make
    # it first, then seed (or restore) the epoch's random state.
    batches = iter(batch_loader(state.data.train, config, state.context, sampler=sampler))
    seed_epoch(state, epoch)
    if state.loss_entry.takes_epoch:  # also when resuming in the epoch's middle
        state.loss_fn.set_epoch(epoch)
    state.network.train()
    bar = tqdm(
        batches,
        total=steps - position.step_in_epoch,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=None if config.progress and state.context.is_main else True,  # None: tty
        leave=False,
    )
    started, images_seen = time.perf_counter(), 0
    loss_sum, loss_count = torch.zeros((), device=state.device), 0
    for images, indices in bar:
        progress = (epoch + position.step_in_epoch / steps) / config.epochs
        set_learning_rate(state.optimizer, config, progress, position.global_step)
        loss_sum += state.step(images, indices)
        loss_count += 1
        position.step_in_epoch += 1
        position.global_step += 1
        images_seen += len(indices)
        if loss_count % REPORT_EVERY == 0 or loss_count == 1:
            # The only host sync of the loop: every few steps, not every step.
            mean_loss = checked_mean_loss(state, loss_sum, loss_count)
            elapsed = time.perf_counter() - started
            bar.set_postfix(
                loss=f"{mean_loss:.4g}", img_s=f"{images_seen / max(elapsed, 1e-9):.0f}"
            )
        every = config.checkpoint_every_steps
        if every and position.global_step % every == 0 and state.context.is_main:
            state.save_checkpoint(state.out / "last.pt")
        if state.stop_due(loss_count):
            raise StopAfterStep
    mean_loss = checked_mean_loss(state, loss_sum, max(loss_count, 1))
    bar.close()
    seconds = time.perf_counter() - started
    return {
        "epoch": epoch + 1,
        "train_loss": mean_loss,
        "lr": state.optimizer.param_groups[0]["lr"],
        "images_per_second": images_seen * state.context.world_size / max(seconds, 1e-9),
        "seconds": seconds,
        "images": images_seen * state.context.world_size,
    }


def train_step(state: EpochState, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """One SGD step on a batch of uint8 ``images`` ``(B, C, H, W)`` and their dataset
    ``indices`` ``(B,)``; returns the batch loss as a 0-d tensor on the device (no sync)."""
    config = state.config
    images = state.prepare(images.to(state.device, non_blocking=True), config.augment)
    if config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = state.targets[indices].to(state.device, non_blocking=True)
    weights = state.sample_weights[indices].to(state.device, non_blocking=True)
    known = state.targets.known(indices)  # partial labels: None when every tag is known
    if known is not None:
        known = known.to(state.device, non_blocking=True)
    state.optimizer.zero_grad(set_to_none=True)
    with autocast(state.device, state.amp_dtype):
        logits = state.network(images)
    every = config.dynamics_every
    record = every and state.position.global_step % every == 0 and state.context.is_main
    ramp = ramp_parameters(state.loss_fn) if record else None
    loss = state.loss_fn(logits.float(), targets, weights, known=known)
    if ramp is not None:
        record_dynamics(state, logits, targets, loss, ramp)
    state.scaler.scale(loss).backward()
    state.scaler.step(state.optimizer)
    state.scaler.update()
    return loss.detach()


def ramp_parameters(loss_fn: MultiLabelLoss) -> dict[str, float]:
    """The ramp a step uses: the loss's own ``s``, ``ramp_beta`` (0 during a hinge warm
    start) and ``kappa`` where it has them; the paper's for other losses."""
    return {
        "s": getattr(loss_fn, "s", -0.8),
        "beta": getattr(loss_fn, "current_beta", 1.0),
        "kappa": getattr(loss_fn, "kappa", 5.0),
    }


def record_dynamics(
    state: EpochState,
    logits: torch.Tensor,
    targets: torch.Tensor,
    loss: torch.Tensor,
    ramp: dict[str, float],
) -> None:
    """Where a batch (``logits``, ``targets``: ``(B, m)``) sits on the ramp, kept for
    ``dynamics.csv``."""
    position = state.position
    record = {
        "step": position.global_step,
        "epoch": position.epoch + position.step_in_epoch / max(state.steps_in_epoch, 1),
        "lr": state.optimizer.param_groups[0]["lr"],
        "loss": float(loss.detach()),
        **ramp,
    }
    record.update(ramp_statistics(logits.detach().float(), targets > 0, **ramp))
    state.dynamics.append(record)


def checked_mean_loss(state: EpochState, loss_sum: torch.Tensor, count: int) -> float:
    """Mean of the epoch's losses so far; a non-finite value stops training with advice."""
    mean = float(loss_sum) / count
    if not math.isfinite(mean):
        raise FloatingPointError(
            f"loss became {mean} in epoch {state.position.epoch + 1} (by step "
            f"{state.position.step_in_epoch}); lower the learning rate (now "
            f"{state.optimizer.param_groups[0]['lr']:g})"
        )
    return mean


def seed_epoch(state: EpochState, epoch: int) -> None:
    """Seed an epoch's randomness from (seed, epoch, rank), or, resuming in the middle of
    an epoch, restore the random states saved with the checkpoint: exact resumes."""
    if state.position.step_in_epoch > 0 and state.saved_rng is not None:
        torch.set_rng_state(state.saved_rng["torch"])
        state.loss_generator.set_state(state.saved_rng["loss"])
        state.saved_rng = None
        return
    offset = state.config.seed * 1_000_003 + epoch * 7919 + state.context.rank
    torch.manual_seed(offset)
    state.loss_generator.manual_seed(offset + 17)
