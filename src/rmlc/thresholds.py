"""Decision thresholds chosen on a validation split, to maximise F1.

A label is predicted when its score is at or above the threshold. :func:`choose_threshold`
finds the one global threshold that maximises the overall (micro) F1 of those predictions
on labeled data, or one threshold per class that maximises each class's F1. With partial
labels (``known``), only the known entries count: an unknown tag is neither a positive nor a
negative, as in :mod:`rmlc.metrics`. Ranking losses
(RMLC, WARP) put no meaning on the score 0, so a threshold learned this way is what makes
their tags usable; the fixed 0 stays the default of every command.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["THRESHOLD_CHOICES", "choose_threshold"]

THRESHOLD_CHOICES = ("auto", "per-class")  # the names rmlc train --threshold takes
ThresholdChoice = Literal["auto", "per-class"]


def choose_threshold(
    scores: Any, targets: Any, per_class: bool = False, known: Any = None
) -> float | np.ndarray:
    """The threshold(s) maximising F1 of ``scores >= threshold`` against ``targets``.

    Args:
        scores: ``(n, m)`` finite scores.
        targets: ``(n, m)`` 0/1 (or -1/+1) labels.
        per_class: one threshold per class (each class's F1; a class without positives
            gets the global threshold) instead of one for all (overall F1).
        known: ``(n, m)`` bool mask of the known entries (partial labels), or None (every
            entry known). Only known entries count, in the F1s and as the scores cut; a
            class without a known positive gets the global threshold.

    Returns:
        a float, or a float64 ``(m,)`` array. Each lies halfway between the lowest score
        kept and the highest score left out (below every score when all are kept).

    Raises:
        ValueError: shapes differ, scores are not finite, or no (known) label is positive.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(targets) > 0
    if scores.ndim != 2 or scores.shape != positive.shape:
        raise ValueError(
            f"scores and targets must both be (n, m); got {scores.shape} and {positive.shape}"
        )
    known = np.ones(positive.shape, bool) if known is None else np.asarray(known, dtype=bool)
    if known.shape != positive.shape:
        raise ValueError(f"known must be (n, m) like the targets, got {known.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite to choose a threshold")
    positive = positive & known  # an unknown entry is never a positive
    if not positive.any():
        raise ValueError(
            "targets have no positive label (among the known entries): no threshold can be chosen"
        )
    overall = _best_cut(scores[known], positive[known])
    if not per_class:
        return overall
    return np.array(
        [
            _best_cut(scores[known[:, j], j], positive[known[:, j], j])
            if positive[:, j].any()
            else overall
            for j in range(scores.shape[1])
        ]
    )


def _best_cut(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold maximising ``F1 = 2 TP / (predicted + positives)`` over every cut of
    the scores sorted in descending order (equal scores are kept or left out together)."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order]
    true_positives = np.cumsum(hits)
    predicted = np.arange(1, len(ranked) + 1)
    f1 = 2 * true_positives / (predicted + hits.sum())
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # the last of each tie
    best = ends[np.argmax(f1[ends])]  # the first maximum: the highest such threshold
    if best + 1 < len(ranked):
        return float((ranked[best] + ranked[best + 1]) / 2)
    return float(ranked[best] - max(1.0, abs(ranked[best])) * 1e-6)
