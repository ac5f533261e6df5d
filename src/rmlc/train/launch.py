"""Starting a run: data, network and trainer as configured, inside the process group."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rmlc.atomic import check_writable
from rmlc.models import build_model
from rmlc.train.config import TrainConfig
from rmlc.train.data import TrainingData
from rmlc.train.datasets import build_training_data
from rmlc.train.distributed import DistributedContext, init_distributed, shutdown_distributed
from rmlc.train.run_folder import prepare_run_folder
from rmlc.train.run_log import RunLog
from rmlc.train.trainer import Trainer

__all__ = ["build_trainer", "run", "run_with"]


def build_trainer(
    config: TrainConfig, context: DistributedContext | None = None, data: TrainingData | None = None
) -> Trainer:
    """Data, network and trainer as configured (``context``: this process's place and device;
    by default one process on ``config.device``; ``data``: by default built from
    ``config.dataset``)."""
    context = context or init_distributed(config.device, config.dist_timeout)
    torch.manual_seed(config.seed)
    data = data if data is not None else build_training_data(config)
    model = build_model(
        config.backbone,
        num_classes=len(data.class_names),
        in_channels=data.in_channels,
        pretrained=config.pretrained,
        weights=config.weights,
        small_input=config.small_input,
        width=config.width,
        norm=config.norm,
    )
    return Trainer(model, data, config, context)


def run_with(config: TrainConfig, body: Callable[[DistributedContext], Any]) -> Any:
    """``body(context)`` inside the process group (joined when launched by torchrun), after
    checking that ``config.out`` can be written and holds no other run (unless ``resume``;
    with ``overwrite`` the main process removes the earlier run's files, and says so in
    the new ``train.log``: :mod:`rmlc.train.run_folder`)."""
    check_writable(config.out)  # before any data is read or any step is taken
    # Every process checks before joining the group; none has written anything yet.
    removed = prepare_run_folder(config, main=int(os.environ.get("RANK", "0")) == 0)
    context = init_distributed(config.device, config.dist_timeout)
    if removed:
        log = RunLog(
            Path(config.out), tensorboard=False, echo=config.progress, enabled=context.is_main
        )
        log.message(f"overwrite: removed the earlier run's {', '.join(removed)} from {config.out}")
    try:
        return body(context)
    finally:
        shutdown_distributed()


def run(config: TrainConfig) -> dict[str, Any]:
    """Train and evaluate as configured; returns the final metrics (rank 0's view)."""
    return run_with(config, lambda context: build_trainer(config, context).fit())
