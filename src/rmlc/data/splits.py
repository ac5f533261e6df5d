"""Seeded, reproducible splits: labeled/unlabeled, stratified multi-label subsets, validation.

* :func:`split_labeled` -- the labeled part of a semi-supervised set, stratified by class
  (a fixed number or fraction of each class); the rest is the unlabeled part.
* :func:`subsample_multilabel` -- a subset of a multi-label set keeping the class
  frequencies (iterative stratification, Sechidis, Tsoumakas and Vlahavas, ECML PKDD
  2011), as the 10% / 20% COCO and NUS-WIDE subsets of the paper.
* :func:`train_validation_split` -- a plain random train/validation split.

All return sorted int64 index arrays; the same arguments give the same split.
"""

from __future__ import annotations

import numbers

import numpy as np

from rmlc.checks import check_fraction, check_seed
from rmlc.data._common import derive_seed
from rmlc.labels import positive_mask_numpy

__all__ = ["split_labeled", "subsample_multilabel", "train_validation_split"]

_LABELED_TAG, _STRATIFY_TAG, _VALIDATION_TAG = 0x6C626C, 0x737472, 0x76616C


def _round_half_up(value: float) -> int:
    return int(np.floor(value + 0.5))


def _complement(selected: np.ndarray, n: int) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[selected] = False
    return np.flatnonzero(mask).astype(np.int64)


def split_labeled(
    labels: np.ndarray,
    n_per_class: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified labeled/unlabeled split.

    Args:
        labels: single-label int ``(N,)`` class indices (>= 0), or multi-label ``(N, m)``
            targets ({0, 1}, {-1, +1} or bool; ``fraction`` only, via
            :func:`subsample_multilabel`).
        n_per_class: number of labeled samples of each class (every class needs that many).
        fraction: fraction of each class to label, ``round(fraction * count)``, at least one
            sample of every class when ``fraction > 0``.
        seed: seed.

    Returns:
        ``(labeled_idx, unlabeled_idx)``: disjoint, sorted int64 arrays covering ``0..N-1``.
    """
    if (n_per_class is None) == (fraction is None):
        raise ValueError("give exactly one of n_per_class= and fraction=")
    seed = check_seed(seed)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if n_per_class is not None:
            raise ValueError("multi-label (N, m) labels need fraction=, not n_per_class=")
        labeled = subsample_multilabel(labels, fraction, seed)  # type: ignore[arg-type]
        return labeled, _complement(labeled, labels.shape[0])
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be 1-D integer class indices or (N, m) targets, got {labels.dtype} "
            f"{labels.shape}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be non-negative class indices, found {labels.min()}")
    if n_per_class is not None and (
        isinstance(n_per_class, bool)
        or not isinstance(n_per_class, numbers.Integral)
        or n_per_class < 0
    ):
        raise ValueError(f"n_per_class must be a non-negative integer, got {n_per_class!r}")
    if fraction is not None:
        fraction = check_fraction(fraction, "fraction")
    rng = np.random.default_rng(derive_seed(seed, _LABELED_TAG))
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if n_per_class is not None:
            take = int(n_per_class)
            if take > members.size:
                raise ValueError(
                    f"n_per_class={take} but class {c} has only {members.size} samples"
                )
        else:
            take = _round_half_up(fraction * members.size)  # type: ignore[operator]
            take = max(take, 1) if fraction > 0 else 0  # type: ignore[operator]
        chosen.append(rng.permutation(members)[:take])
    labeled = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return labeled.astype(np.int64), _complement(labeled, labels.size)


def subsample_multilabel(targets: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Subset of ``round(fraction * N)`` samples keeping label frequencies (stratified).

    Iterative stratification into two parts of sizes ``fraction * N`` and the rest:
    repeatedly take the label with the fewest unassigned samples and give each of its
    samples (in random order) to the part that still needs most of that label (ties: the
    part that needs most samples, then at random), updating both parts' needs. Samples
    without positive labels fill the remaining places at random. Sizes are exact.

    Args:
        targets: ``(N, m)`` in {0, 1}, {-1, +1} or bool.
        fraction: size of the subset relative to ``N``, in ``[0, 1]``.
        seed: seed.

    Returns:
        sorted int64 indices of the subset.
    """
    fraction = check_fraction(fraction, "fraction")
    seed = check_seed(seed)
    positive = positive_mask_numpy(np.asarray(targets), "targets")
    if positive.ndim != 2:
        raise ValueError(f"targets must have shape (N, m), got shape {positive.shape}")
    n, m = positive.shape
    rng = np.random.default_rng(derive_seed(seed, _STRATIFY_TAG))
    size = _round_half_up(fraction * n)
    need_total = [float(size), float(n - size)]
    label_count = positive.sum(axis=0).astype(np.float64)
    need = np.stack([fraction * label_count, (1 - fraction) * label_count])  # (2, m)
    remaining = label_count.copy()
    labels_of = [np.flatnonzero(row) for row in positive]
    members = [rng.permutation(np.flatnonzero(positive[:, j])) for j in range(m)]
    part = np.full(n, -1, dtype=np.int64)
    tie_break = rng.random(n)
    active = remaining > 0
    while active.any():
        counts = np.where(active, remaining, np.inf)
        candidates = np.flatnonzero(counts == counts.min())
        label = int(candidates[rng.integers(candidates.size)])
        for sample in members[label]:
            if part[sample] >= 0:
                continue
            if need_total[0] <= 0:
                chosen = 1
            elif need_total[1] <= 0:
                chosen = 0
            elif need[0, label] != need[1, label]:
                chosen = 0 if need[0, label] > need[1, label] else 1
            elif need_total[0] != need_total[1]:
                chosen = 0 if need_total[0] > need_total[1] else 1
            else:
                chosen = int(tie_break[sample] < 0.5)
            part[sample] = chosen
            need_total[chosen] -= 1
            need[chosen, labels_of[sample]] -= 1
            remaining[labels_of[sample]] -= 1
        active = remaining > 0
    unassigned = rng.permutation(np.flatnonzero(part < 0))
    fill = max(int(need_total[0]), 0)
    part[unassigned[:fill]] = 0
    part[unassigned[fill:]] = 1
    return np.flatnonzero(part == 0).astype(np.int64)


def train_validation_split(n: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random split of ``range(n)`` into training and ``round(fraction * n)`` validation.

    Returns:
        ``(train_idx, validation_idx)``: disjoint, sorted int64 arrays covering ``0..n-1``.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    fraction = check_fraction(fraction, "fraction")
    order = np.random.default_rng(derive_seed(check_seed(seed), _VALIDATION_TAG)).permutation(n)
    validation = np.sort(order[: _round_half_up(fraction * n)]).astype(np.int64)
    return _complement(validation, int(n)), validation
