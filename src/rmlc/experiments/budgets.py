"""Training length read off one run: what a run of ``B`` epochs would have scored.

With a constant learning rate (``schedule: fixed``), a warm start counted in steps and every
epoch seeded from ``(seed, epoch)``, the first ``B`` epochs of a long run *are* a run of
``B`` epochs. So one run, evaluated on the test split after every epoch
(``test_every_epoch``), gives every shorter budget: the network its noisy validation split
picks among the first ``B`` epochs (early stopping, what users do) and the network of epoch
``B`` (no early stopping). The test split is read, never used to choose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["CURVE_KEYS", "budget_metrics", "budget_names", "curve"]

# Per-epoch series kept with each run: the clean test split, the noisy validation split, and
# the fit of the training samples to their (possibly corrupted) training labels, to their
# clean labels, and of the corrupted samples alone to their corrupted labels.
CURVE_KEYS = (
    "test_mAP",
    "test_F1-C",
    "val_mAP",
    "fit_train_mAP",
    "fit_clean_mAP",
    "fit_corrupted_mAP",
)
# The test metrics reported at each budget, at the selected and at the last epoch.
_REPORTED = ("mAP", "F1-C")


def curve(history: Sequence[dict[str, Any]]) -> dict[str, list[float | None]]:
    """The per-epoch series of a run's history (``Trainer.history``): ``epoch`` and each
    of :data:`CURVE_KEYS` a run recorded, rounded to 3 decimals (percent); ``None`` at the
    epochs a thinned curve skipped (``curve_every``: NaN in the history)."""
    series: dict[str, list[Any]] = {"epoch": [int(record["epoch"]) for record in history]}
    for key in CURVE_KEYS:
        if all(key in record for record in history) and history:
            values = [float(record[key]) for record in history]
            series[key] = [None if math.isnan(v) else round(v, 3) for v in values]
    return series


def _at(series: dict[str, list[Any]], key: str, epoch: int) -> float:
    """``series[key]`` at a 0-based ``epoch``; a ``ValueError`` if the curve skipped it."""
    value = series[key][epoch]
    if value is None:
        raise ValueError(
            f"the run's {key} curve has no value at epoch {epoch + 1}: with curve_every, "
            "every budget must be a multiple of it"
        )
    return value


def budget_names(budget: int) -> dict[str, str]:
    """The metric names of one budget: ``mAP@B`` (at the epoch validation picks among the
    first ``B``), ``last_mAP@B`` (at epoch ``B``), the same for ``F1-C``, ``epoch@B`` and
    ``fit_corrupted@B``."""
    names = {}
    for metric in _REPORTED:
        names[metric] = f"{metric}@{budget}"
        names[f"last_{metric}"] = f"last_{metric}@{budget}"
    names["epoch"] = f"epoch@{budget}"
    names["fit_corrupted"] = f"fit_corrupted@{budget}"
    return names


def budget_metrics(series: dict[str, list[float]], budgets: Sequence[int]) -> dict[str, float]:
    """The scores of every budget, from a run's :func:`curve`.

    For budget ``B``: the epoch picked is the first with the highest ``val_mAP`` among
    epochs 1..B (the trainer's own rule: a later epoch must be strictly better).

    Raises:
        ValueError: the curve is shorter than a budget, or lacks ``test_mAP`` / ``val_mAP``.
    """
    for key in ("test_mAP", "val_mAP"):
        if key not in series:
            raise ValueError(
                f"the run has no {key} curve: budgets need test_every_epoch and a validation split"
            )
    epochs = len(series["test_mAP"])
    result: dict[str, float] = {}
    for budget in budgets:
        if not 1 <= budget <= epochs:
            raise ValueError(f"budget {budget} is outside the run's {epochs} epochs")
        validation = series["val_mAP"][:budget]  # every epoch: validation is never thinned
        picked = max(range(budget), key=lambda epoch: (validation[epoch], -epoch))
        names = budget_names(budget)
        for metric in _REPORTED:
            if f"test_{metric}" in series:
                result[names[metric]] = _at(series, f"test_{metric}", picked)
                result[names[f"last_{metric}"]] = _at(series, f"test_{metric}", budget - 1)
        result[names["epoch"]] = float(picked + 1)
        if "fit_corrupted_mAP" in series:
            result[names["fit_corrupted"]] = _at(series, "fit_corrupted_mAP", budget - 1)
    return result
