"""Deep training of RML-CNN and SS-RML-CNN: configuration, data, the trainer, and a runner.

``run(config)`` is what ``rmlc train`` (and ``torchrun -m rmlc train``) calls: it joins the
process group when launched by torchrun, builds data and model, trains and evaluates.
``fit(images, targets, **config)`` does the same for images in memory.
"""

from __future__ import annotations

from rmlc.train.arrays import fit
from rmlc.train.config import TrainConfig, load_config
from rmlc.train.launch import build_trainer, run, run_with
from rmlc.train.trainer import Trainer, TrainingInterrupted

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "build_trainer",
    "fit",
    "load_config",
    "run",
    "run_with",
]
