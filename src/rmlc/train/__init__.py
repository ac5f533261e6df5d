"""Deep training of RML-CNN and SS-RML-CNN: configuration, data, the trainer, and a runner.

``run(config)`` is what ``rmlc train`` (and ``torchrun -m rmlc train``) calls: it joins the
process group when launched by torchrun, builds data and model, trains and evaluates.
"""

from __future__ import annotations

from typing import Any

from rmlc.train.config import TrainConfig, load_config
from rmlc.train.trainer import Trainer, TrainingInterrupted

__all__ = ["TrainConfig", "Trainer", "TrainingInterrupted", "build_trainer", "load_config", "run"]


def build_trainer(config: TrainConfig, context=None) -> Trainer:
    """Data, network and trainer as configured (``context``: this process's place and device;
    by default one process on ``config.device``)."""
    import torch

    from rmlc.models import build_model
    from rmlc.train.data import build_training_data
    from rmlc.train.distributed import init_distributed

    context = context or init_distributed(config.device, config.dist_timeout)
    torch.manual_seed(config.seed)
    data = build_training_data(config)
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


def run(config: TrainConfig) -> dict[str, Any]:
    """Train and evaluate as configured; returns the final metrics (rank 0's view)."""
    from rmlc.atomic import check_writable
    from rmlc.train.distributed import init_distributed, shutdown_distributed

    check_writable(config.out)  # before any data is read or any step is taken
    context = init_distributed(config.device, config.dist_timeout)
    try:
        return build_trainer(config, context).fit()
    finally:
        shutdown_distributed()
