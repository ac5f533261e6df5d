"""The optimizer and mixed precision of a run: SGD over two parameter groups (weight decay
on the weights, none on biases and norm parameters), the AMP gradient scaler, autocast and
the learning rate of each step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rmlc.losses import MultiLabelLoss, loss_entry
from rmlc.losses.ranking import hinge_steps_for
from rmlc.train.config import TrainConfig
from rmlc.train.schedule import learning_rate

__all__ = [
    "amp_dtype",
    "autocast",
    "build_optimizer",
    "parameter_groups",
    "set_learning_rate",
    "training_loss",
]


def training_loss(
    config: TrainConfig, generator: torch.Generator, total_steps: Callable[[], int]
) -> MultiLabelLoss:
    """The run's loss, as its registry entry says: sampled ranks drawn from ``generator``
    (seeded per epoch), and the hinge for ``config.ramp_start`` of the run's
    ``total_steps()``. Per-step value checks are off: the targets were validated when the
    data was loaded, and checks would make every CUDA step wait for the GPU."""
    entry = loss_entry(config.loss)
    loss = entry.build(**config.loss_params)
    if entry.sampled_ranks and loss.generator is None:
        loss.generator = generator
    if config.ramp_start is not None:  # the hinge for that fraction of the run's steps
        loss.hinge_steps = hinge_steps_for(config.ramp_start, total_steps())
    loss.check_values = False
    return loss


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two SGD groups of ``model``'s parameters, in their order: the weights (with
    ``weight_decay``), then biases and norm parameters (any of at most one dimension, or
    named ``*.bias``), without."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD with ``config``'s rate, momentum and (with momentum) Nesterov, over
    :func:`parameter_groups`."""
    return torch.optim.SGD(
        parameter_groups(model, config.weight_decay),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
    )


def amp_dtype(amp: str | None) -> torch.dtype | None:
    """The autocast dtype of ``config.amp`` (``"bf16"``, ``"fp16"``), or None without AMP."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Mixed precision in ``dtype`` on ``device``, or (``dtype`` None) a no-op context."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def set_learning_rate(
    optimizer: torch.optim.Optimizer, config: TrainConfig, progress: float, global_step: int
) -> None:
    """The schedule's rate at this step (``progress``: epochs done over all of them), for
    every parameter group."""
    rate = learning_rate(
        config.lr,
        config.schedule,
        progress,
        global_step,
        config.milestones,
        config.gamma,
        config.warmup_steps,
    )
    for group in optimizer.param_groups:
        group["lr"] = rate
