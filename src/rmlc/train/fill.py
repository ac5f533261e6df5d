"""Filling the unknown tags of labeled images from their nearest labeled neighbours
(partial labels, beyond the paper): ``TrainConfig.fill_unknown``.

At each label refresh (the semi-supervised schedule: after ``warmup_epochs``, then every
``refresh_every`` epochs; with or without an unlabeled pool), for every class ``j`` and
every labeled image ``i`` whose tag ``j`` is unknown, the nearest *other* labeled image in
the current network's feature space whose tag ``j`` is known (positive or verified absent)
gives the entry its value, with the heat-kernel confidence ``s = exp(-d / t)`` of
:mod:`rmlc.propagation` (``d`` the Euclidean distance; ``t`` as ``TrainConfig.t`` says,
over the distances of every entry filled: ``"mean"`` their mean, ``"authors"`` that mean
times ``k / (l + k)`` for ``k`` entries and ``l`` labeled images, or the number given).

How a filled entry enters the loss: it becomes a *known* entry with its neighbour's value
(a positive, or a verified negative), exactly like a given one, where ``s`` is at least
``fill_unknown_confidence`` (0 by default: every entry with a known neighbour is filled);
the others stay unknown. The losses weigh samples, not entries, so the confidence can only
choose which entries are filled, not weigh them: the image's sample weight stays 1, and a
filled entry counts as much as a given one. Each refresh fills from the tags *as given*
(never from earlier fills), so an entry filled once may be left unknown later.

The search is exact (:func:`rmlc.propagation.propagate_labels` per class, over the labeled
images that know the class; exact ties: the lower labeled position, near-ties within
float32 rounding: either), costing about ``O(l · K · d)`` for ``K`` known entries in all
(5,000 images, 80 classes half known,
``d = 64``: 22 s on two busy CPU cores): meant for labeled sets of thousands to tens of
thousands of images. Several processes each compute the same fill from the gathered
labeled features.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from rmlc.propagation import Temperature, propagate_labels
from rmlc.propagation.heat_kernel import heat_kernel_weights, temperature
from rmlc.train.config import TrainConfig
from rmlc.train.targets import SparseTargets

__all__ = [
    "Fill",
    "check_fill_unknown",
    "describe_fill",
    "fill_labeled",
    "filled_targets",
    "nearest_known",
]


@dataclass(frozen=True, eq=False)
class Fill:
    """The ``k`` unknown entries of ``l`` labeled images that a known neighbour can fill,
    ordered by class, then row.

    Attributes:
        rows: ``(k,)`` int64 labeled positions (row of ``given``) of the entries.
        classes: ``(k,)`` int64 their classes.
        positive: ``(k,)`` bool the neighbour's value (True: positive, False: verified absent).
        neighbors: ``(k,)`` int64 the labeled position of the neighbour that gives it.
        distances: ``(k,)`` float64 the Euclidean distance to it.
        weights: ``(k,)`` float32 the heat-kernel confidences ``exp(-distance / t)``.
        t: the temperature used (NaN for ``k = 0`` with ``"mean"`` or ``"authors"``).
    """

    rows: np.ndarray
    classes: np.ndarray
    positive: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    weights: np.ndarray
    t: float


def nearest_known(features: torch.Tensor, given: SparseTargets, t: Temperature = "mean") -> Fill:
    """For each unknown entry ``(i, j)`` of ``given``, the nearest labeled image ``k != i``
    whose entry ``j`` is known, and its value.

    Args:
        features: ``(l, d)`` the labeled images' features, row ``i`` of image ``i``.
        given: ``(l, m)`` their targets with negatives (the known entries).
        t: the heat kernel's temperature (see the module's notes).

    Returns:
        a :class:`Fill` (a class that no image, or every image, knows adds no entry).
    """
    if given.negatives is None:
        raise ValueError("nearest_known needs targets with negatives (unknown tags)")
    n = len(given)
    if features.shape[0] != n:
        raise ValueError(f"{features.shape[0]} feature rows for {n} labeled images")
    known = (given.matrix + given.negatives).tocsc()
    positives = given.matrix.tocsc()
    parts = []
    for j in range(given.num_classes):
        known_rows = np.sort(known.indices[known.indptr[j] : known.indptr[j + 1]])
        if 0 < len(known_rows) < n:
            listed = positives.indices[positives.indptr[j] : positives.indptr[j + 1]]
            parts.append(_nearest_in_class(features, known_rows, np.isin(known_rows, listed), j))
    columns = list(zip(*parts, strict=True)) if parts else [[np.zeros(0, np.int64)]] * 5
    rows, classes, positive, neighbors, distances = (np.concatenate(c) for c in columns)
    t_used = temperature(torch.from_numpy(distances.astype(np.float64)), t, n)
    weights = heat_kernel_weights(torch.from_numpy(distances.astype(np.float64)), t_used)
    return Fill(
        rows=rows.astype(np.int64),
        classes=classes.astype(np.int64),
        positive=positive.astype(bool),
        neighbors=neighbors.astype(np.int64),
        distances=distances.astype(np.float64),
        weights=weights.numpy(),
        t=t_used,
    )


def _nearest_in_class(
    features: torch.Tensor, known_rows: np.ndarray, value: np.ndarray, j: int
) -> tuple[np.ndarray, ...]:
    """Class ``j``'s unknown entries: ``(rows, classes, positive, neighbors, distances)``,
    each ``(u_j,)``, from the labeled images ``known_rows`` (sorted) that know it, with
    ``value`` ``(len(known_rows),)`` bool their entries."""
    unknown_rows = np.setdiff1d(np.arange(features.shape[0]), known_rows)
    found = propagate_labels(
        features[torch.from_numpy(known_rows)],
        torch.from_numpy(value.astype(np.int64)),
        features[torch.from_numpy(unknown_rows)],
        t=1.0,  # only the distances are used: t is taken over every class's
        progress=False,
    )
    nearest = found.neighbors.cpu().numpy()
    classes = np.full(len(unknown_rows), j, dtype=np.int64)
    return unknown_rows, classes, value[nearest], known_rows[nearest], found.distances.cpu().numpy()


def filled_targets(given: SparseTargets, fill: Fill, min_confidence: float = 0.0) -> SparseTargets:
    """``given`` with the entries of ``fill`` whose confidence is at least
    ``min_confidence`` made known: positives added to its positives, the others to its
    negatives (verified absent)."""
    keep = fill.weights >= min_confidence

    def entries(value: bool) -> scipy.sparse.csr_array:
        chosen = keep & (fill.positive == value)
        ones = np.ones(int(chosen.sum()), dtype=np.uint8)
        coordinates = (fill.rows[chosen], fill.classes[chosen])
        return scipy.sparse.csr_array((ones, coordinates), shape=given.shape)

    return SparseTargets(given.matrix + entries(True), given.negatives + entries(False))


def check_fill_unknown(config: TrainConfig, given: SparseTargets, class_names: list[str]) -> None:
    """Refuse ``fill_unknown`` where every training tag is known (no negatives: nothing to
    fill); warn where the labeled images hold no unknown tag, and name the classes that
    only positives know (their unknown tags can only be filled as positive)."""
    if not config.fill_unknown:
        return
    if given.negatives is None:
        raise ValueError(
            "fill_unknown is on but every training tag is known (no negatives column, "
            "hide_tags 0): there is no unknown tag to fill; set fill_unknown off"
        )
    n_known = (given.matrix + given.negatives).nnz
    if n_known == len(given) * given.num_classes:
        warnings.warn(
            "fill_unknown is on but the labeled training images have no unknown tag",
            stacklevel=3,
        )
    only_positive = [
        name
        for name, positives, negatives in zip(
            class_names,
            given.positives_per_class(),
            np.bincount(given.negatives.indices, minlength=given.num_classes),
            strict=True,
        )
        if 0 < positives < len(given) and not negatives
    ]
    if only_positive:
        warnings.warn(
            f"fill_unknown: class(es) with no verified negative among the labeled images: "
            f"{', '.join(only_positive[:10])}{' ...' if len(only_positive) > 10 else ''}; "
            "their unknown tags can only be filled as positive",
            stacklevel=3,
        )


def fill_labeled(
    targets: SparseTargets,
    labeled: torch.Tensor,
    features: tuple[torch.Tensor, torch.Tensor],
    given: SparseTargets,
    config: TrainConfig,
) -> tuple[Fill, SparseTargets]:
    """Fill the labeled samples' unknown tags in ``targets``, in place: their rows become
    ``given`` with the entries of :func:`nearest_known` that ``fill_unknown_confidence``
    keeps (:func:`filled_targets`).

    Args:
        targets: ``(N, m)`` every training sample's targets, with negatives.
        labeled: ``(l,)`` the labeled samples' rows in ``targets``.
        features: the labeled samples' features ``(l, d)`` and their rows in ``targets``
            ``(l,)``, in any order (gathered from every process).
        given: ``(l, m)`` the labeled samples' targets as given, in the order of ``labeled``.
        config: ``t`` and ``fill_unknown_confidence``.

    Returns:
        the fill and the labeled rows' new targets ``(l, m)``.
    """
    rows_of, indices = features
    position = torch.full((len(targets),), -1, dtype=torch.int64)
    position[labeled] = torch.arange(len(labeled))
    ordered = rows_of.new_empty(len(labeled), rows_of.shape[1])
    ordered[position[indices]] = rows_of
    fill = nearest_known(ordered, given, config.t)
    filled = filled_targets(given, fill, config.fill_unknown_confidence)
    targets.set_rows(labeled, filled.matrix, filled.negatives)
    return fill, filled


def describe_fill(
    fill: Fill, given: SparseTargets, filled: SparseTargets, min_confidence: float
) -> str:
    """One line for the run's log: what :func:`fill_labeled` filled and left unknown."""
    kept = fill.weights >= min_confidence
    images = len(np.unique(fill.rows[kept]))
    confidence = f"{fill.weights[kept].mean():.3f}" if kept.any() else "-"
    left = len(given) * given.num_classes - (filled.matrix + filled.negatives).nnz
    return (
        f"filled {int(kept.sum())} unknown tags of {images} labeled images from their "
        f"nearest labeled neighbours (t={fill.t:.4g}, mean confidence {confidence}); "
        f"{left} left unknown ({len(kept) - int(kept.sum())} below the confidence "
        f"{min_confidence:g})"
    )
