"""What a run records after each epoch for studies of training length: the training set's
fit to its labels (``dynamics_every``) and the test split's metrics (``test_every_epoch``),
every epoch or thinned to every ``curve_every`` (:class:`~rmlc.train.config.TrainConfig`).
A curve is never used to choose anything."""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset, Subset

from rmlc.train.config import TrainConfig
from rmlc.train.data import TrainingData
from rmlc.train.evaluation import training_fit
from rmlc.train.targets import SparseTargets

__all__ = ["CurveState", "curves_due", "epoch_curves", "on_curve_grid"]


class CurveState(Protocol):
    """What the curves read: a trainer's state after an epoch."""

    config: TrainConfig
    data: TrainingData
    targets: SparseTargets  # (N, m) of every training sample
    best_epoch: int  # 1-based; -1 before any
    history: list[dict[str, Any]]  # one record per finished epoch

    def predict_scores(self, view: Dataset) -> tuple[torch.Tensor, torch.Tensor]: ...

    def evaluate(self, split: tuple[Dataset, Any]) -> dict[str, float]: ...


def on_curve_grid(epoch: int, every: int, epochs: int) -> bool:
    """Whether 1-based ``epoch`` of an ``epochs``-epoch run is on a thinned curve's regular
    grid: the first, every ``every``-th and the last."""
    return epoch % every == 0 or epoch in (1, epochs)


def curves_due(trainer: CurveState, epoch: int) -> bool:
    """Whether the curves are evaluated after 0-based ``epoch``: on the grid of
    ``curve_every`` (:func:`on_curve_grid`), and every epoch the validation split selected
    (so every early-stopping pick of a shorter run has its test score)."""
    config = trainer.config
    return (
        on_curve_grid(epoch + 1, config.curve_every, config.epochs)
        or trainer.best_epoch == epoch + 1
        or not trainer.history
    )


def epoch_curves(trainer: CurveState, epoch: int) -> dict[str, float]:
    """The curves' values after ``epoch`` (``fit_*``, ``test_*``); at an epoch they skip,
    NaN under the keys of the epoch before (``log.csv`` keeps its columns)."""
    if not curves_due(trainer, epoch):
        keys = [key for key in trainer.history[-1] if key.startswith(("fit_", "test_"))]
        return dict.fromkeys(keys, math.nan)
    values: dict[str, float] = {}
    if trainer.config.dynamics_every:
        labeled = trainer.data.labeled
        scores, positions = trainer.predict_scores(Subset(trainer.data.train, labeled.tolist()))
        clean = trainer.data.clean_targets
        values.update(
            training_fit(
                scores,
                trainer.targets[labeled[positions]],
                None if clean is None else clean[positions],
            )
        )
    if trainer.config.test_every_epoch and trainer.data.test is not None:
        test = trainer.evaluate(trainer.data.test)
        values.update({f"test_{key}": value for key, value in test.items()})
    return values
