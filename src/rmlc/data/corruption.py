"""Seeded label noise: corrupted label vectors and missing positive labels.

:func:`corrupt_labels` replaces the labels of a random subset of ``round(rate * N)``
samples. The subset is the first ``round(rate * N)`` entries of one seeded permutation,
so for one seed the subsets are *nested* across rates (the 10% subset lies inside the 20%
subset), and the new labels come from a second, independent stream. Protocols:

* ``"paper"`` (default; multi-label ``(N, m)`` or single-label ``(N,)``): the corrupted
  samples exchange their labels -- each gets the label (vector) of another corrupted
  sample, through a random permutation without fixed points -- so the class frequencies
  are kept *exactly*. A sample can receive an identical label vector (and a single
  corrupted sample keeps its own), so the realised noise (see :class:`CorruptionReport`)
  can be a little below ``rate``.
* ``"independent"`` (multi-label): each corrupted sample gets each class independently
  with its frequency in ``targets``; empty vectors are redrawn (as the authors' code).
  Class frequencies are kept in expectation.
* ``"symmetric"`` (single-label): the new label is uniform among the other classes.
* ``"pairflip"`` (single-label): class ``c`` becomes ``(c + 1) % num_classes``.
* ``"transition"`` (single-label): the new label of a class-``c`` sample is drawn from
  row ``c`` of a given transition matrix.

:func:`drop_positives` models missing labels: each positive label is removed
independently with probability ``p`` (nested across ``p`` for one seed).

Both keep the input's dtype and encoding ({0, 1}, {-1, +1} or bool; integer class labels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, overload

import numpy as np

from rmlc.checks import check_fraction, check_seed
from rmlc.data._common import derive_seed
from rmlc.labels import positive_mask_numpy

__all__ = [
    "MULTI_LABEL_PROTOCOLS",
    "SINGLE_LABEL_PROTOCOLS",
    "CorruptionReport",
    "DropReport",
    "corrupt_labels",
    "corrupted_subset",
    "drop_positives",
]

MULTI_LABEL_PROTOCOLS = ("paper", "independent")
SINGLE_LABEL_PROTOCOLS = ("paper", "symmetric", "pairflip", "transition")
Protocol = Literal["paper", "independent", "symmetric", "pairflip", "transition"]

_SUBSET_TAG, _LABELS_TAG, _DROP_TAG = 0x737562, 0x6C6162, 0x64726F
_MAX_REDRAWS = 10_000


@dataclass(frozen=True, eq=False)
class CorruptionReport:
    """Realised noise of :func:`corrupt_labels`.

    Attributes:
        protocol: the protocol used.
        rate: the requested fraction of corrupted samples.
        seed: the seed used.
        n_samples: ``N``.
        indices: sorted int64 indices of the ``round(rate * N)`` corrupted samples.
        n_changed: corrupted samples whose label (vector) actually changed.
        flipped_fraction: multi-label: fraction of the ``N * m`` label entries flipped;
            single-label: fraction of the ``N`` samples whose label changed.
    """

    protocol: str
    rate: float
    seed: int
    n_samples: int
    indices: np.ndarray = field(repr=False)
    n_changed: int
    flipped_fraction: float

    @property
    def n_corrupted(self) -> int:
        """Number of samples selected for corruption."""
        return int(self.indices.size)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (indices as a list)."""
        result = asdict(self)
        result["indices"] = self.indices.tolist()
        result["n_corrupted"] = self.n_corrupted
        return result


@dataclass(frozen=True, eq=False)
class DropReport:
    """Realised effect of :func:`drop_positives`.

    Attributes:
        p: the requested drop probability.
        seed: the seed used.
        n_positives: positive labels before dropping.
        n_dropped: positive labels removed.
        dropped_fraction: ``n_dropped / n_positives`` (0 when there are no positives).
        emptied_rows: sorted int64 indices of rows left without any positive label.
    """

    p: float
    seed: int
    n_positives: int
    n_dropped: int
    dropped_fraction: float
    emptied_rows: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (row indices as a list)."""
        result = asdict(self)
        result["emptied_rows"] = self.emptied_rows.tolist()
        return result


def _round_half_up(value: float) -> int:
    return int(np.floor(value + 0.5))


def corrupted_subset(n: int, rate: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of the samples :func:`corrupt_labels` corrupts (nested across rates).

    Args:
        n: number of samples.
        rate: fraction in ``[0, 1]``.
        seed: seed of the permutation.

    Returns:
        int64 ``(round(rate * n),)`` indices, sorted.
    """
    rate = check_fraction(rate, "rate")
    order = np.random.default_rng(derive_seed(seed, _SUBSET_TAG)).permutation(n)
    return np.sort(order[: _round_half_up(rate * n)]).astype(np.int64)


def _derangement(k: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random permutation of ``range(k)`` without fixed points (identity if k < 2)."""
    if k < 2:
        return np.arange(k)
    while True:
        perm = rng.permutation(k)
        if not (perm == np.arange(k)).any():
            return perm


def _restore_encoding(positive: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Encode a bool mask like ``like``: bool, {-1, +1} (if ``like`` has -1) or {0, 1}."""
    if like.dtype == bool:
        return positive.copy()
    if (like == -1).any():
        return np.where(positive, 1, -1).astype(like.dtype)
    return positive.astype(like.dtype)


def _independent_rows(frequency: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if frequency.max(initial=0.0) <= 0:
        raise ValueError("protocol='independent' needs at least one positive label in targets")
    rows = rng.random((k, frequency.size)) < frequency
    for _ in range(_MAX_REDRAWS):
        empty = np.flatnonzero(~rows.any(axis=1))
        if not empty.size:
            return rows
        rows[empty] = rng.random((empty.size, frequency.size)) < frequency
    raise ValueError("protocol='independent': label frequencies too low to draw non-empty rows")


def _check_transition(transition: object, num_classes: int) -> np.ndarray:
    matrix = np.asarray(transition, dtype=np.float64)
    if matrix.shape != (num_classes, num_classes):
        raise ValueError(
            f"transition must have shape ({num_classes}, {num_classes}), got {matrix.shape}"
        )
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("transition must hold finite, non-negative probabilities")
    sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-6)
    if bad.size:
        raise ValueError(f"transition row {bad[0]} sums to {sums[bad[0]]:.6g}, not 1")
    return matrix / sums[:, None]


def _corrupt_single(
    labels: np.ndarray,
    subset: np.ndarray,
    protocol: str,
    rng: np.random.Generator,
    num_classes: int | None,
    transition: object,
) -> np.ndarray:
    if labels.dtype.kind not in "iu":
        raise TypeError(f"single-label targets must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"single-label targets must be non-negative, found {labels.min()}")
    top = int(labels.max()) + 1 if labels.size else 0
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise ValueError(f"label {top - 1} is out of range for num_classes={num_classes}")
    old = labels[subset].astype(np.int64)
    if protocol == "paper":
        new = old[_derangement(subset.size, rng)]
    elif protocol in ("symmetric", "pairflip") and num_classes < 2:
        raise ValueError(f"protocol={protocol!r} needs at least 2 classes, got {num_classes}")
    elif protocol == "symmetric":
        new = (old + rng.integers(1, num_classes, size=old.size)) % num_classes
    elif protocol == "pairflip":
        new = (old + 1) % num_classes
    else:
        cumulative = np.cumsum(_check_transition(transition, num_classes), axis=1)
        cumulative[:, -1] = 1.0
        new = (rng.random(old.size)[:, None] < cumulative[old]).argmax(axis=1)
    result = labels.copy()
    result[subset] = new.astype(labels.dtype)
    return result


@overload
def corrupt_labels(
    targets: np.ndarray,
    rate: float,
    seed: int = ...,
    protocol: Protocol = ...,
    *,
    num_classes: int | None = ...,
    transition: np.ndarray | None = ...,
    return_report: Literal[False] = ...,
) -> np.ndarray: ...
@overload
def corrupt_labels(
    targets: np.ndarray,
    rate: float,
    seed: int = ...,
    protocol: Protocol = ...,
    *,
    num_classes: int | None = ...,
    transition: np.ndarray | None = ...,
    return_report: Literal[True],
) -> tuple[np.ndarray, CorruptionReport]: ...
def corrupt_labels(
    targets: np.ndarray,
    rate: float,
    seed: int = 0,
    protocol: Protocol = "paper",
    *,
    num_classes: int | None = None,
    transition: np.ndarray | None = None,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, CorruptionReport]:
    """Corrupt the labels of ``round(rate * N)`` samples (protocols in the module doc).

    Args:
        targets: multi-label ``(N, m)`` in {0, 1}, {-1, +1} or bool, or single-label
            integer ``(N,)`` class indices.
        rate: fraction of samples to corrupt, in ``[0, 1]``; 0 returns an unchanged copy.
        seed: seed; the corrupted subsets of one seed are nested across rates.
        protocol: ``"paper"`` or ``"independent"`` (multi-label); ``"paper"``,
            ``"symmetric"``, ``"pairflip"`` or ``"transition"`` (single-label).
        num_classes: single-label only: number of classes (default ``max + 1``).
        transition: ``protocol="transition"`` only: ``(C, C)`` row-stochastic matrix.
        return_report: also return a :class:`CorruptionReport`.

    Returns:
        the corrupted copy, same shape, dtype and encoding as ``targets`` (and the report).
    """
    rate = check_fraction(rate, "rate")
    seed = check_seed(seed)
    targets = np.asarray(targets)
    if targets.ndim not in (1, 2):
        raise ValueError(f"targets must have shape (N,) or (N, m), got {targets.shape}")
    allowed = SINGLE_LABEL_PROTOCOLS if targets.ndim == 1 else MULTI_LABEL_PROTOCOLS
    kind = "single-label (N,)" if targets.ndim == 1 else "multi-label (N, m)"
    if protocol not in allowed:
        raise ValueError(f"protocol for {kind} targets must be one of {allowed}, got {protocol!r}")
    if (transition is not None) != (protocol == "transition"):
        raise ValueError("transition= is required by, and only used with, protocol='transition'")
    n = targets.shape[0]
    subset = corrupted_subset(n, rate, seed)
    rng = np.random.default_rng(derive_seed(seed, _LABELS_TAG))
    if targets.ndim == 1:
        result = _corrupt_single(targets, subset, protocol, rng, num_classes, transition)
        changed = result != targets
        n_changed, flipped = int(changed.sum()), float(changed.mean()) if n else 0.0
    else:
        if num_classes is not None:
            raise ValueError("num_classes= is for single-label targets only")
        positive = positive_mask_numpy(targets, "targets")
        new = positive.copy()
        if protocol == "paper":
            new[subset] = positive[subset][_derangement(subset.size, rng)]
        else:
            new[subset] = _independent_rows(positive.mean(axis=0), subset.size, rng)
        result = _restore_encoding(new, targets)
        flips = new != positive
        n_changed = int(flips.any(axis=1).sum())
        flipped = float(flips.mean()) if flips.size else 0.0
    if not return_report:
        return result
    return result, CorruptionReport(protocol, rate, seed, n, subset, n_changed, flipped)


@overload
def drop_positives(
    targets: np.ndarray, p: float, seed: int = ..., *, return_report: Literal[False] = ...
) -> np.ndarray: ...
@overload
def drop_positives(
    targets: np.ndarray, p: float, seed: int = ..., *, return_report: Literal[True]
) -> tuple[np.ndarray, DropReport]: ...
def drop_positives(
    targets: np.ndarray,
    p: float,
    seed: int = 0,
    *,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, DropReport]:
    """Remove each positive label independently with probability ``p`` (missing labels).

    Args:
        targets: ``(N, m)`` in {0, 1}, {-1, +1} or bool.
        p: drop probability in ``[0, 1]``; for one seed the dropped sets are nested in ``p``.
        seed: seed.
        return_report: also return a :class:`DropReport`.

    Returns:
        the copy with dropped positives set to negative (same dtype and encoding).
    """
    p = check_fraction(p, "p")
    seed = check_seed(seed)
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"targets must have shape (N, m), got shape {targets.shape}")
    positive = positive_mask_numpy(targets, "targets")
    uniform = np.random.default_rng(derive_seed(seed, _DROP_TAG)).random(positive.shape)
    dropped = positive & (uniform < p)
    kept = positive & ~dropped
    result = _restore_encoding(kept, targets)
    if not return_report:
        return result
    n_positives, n_dropped = int(positive.sum()), int(dropped.sum())
    emptied = np.flatnonzero(positive.any(axis=1) & ~kept.any(axis=1)).astype(np.int64)
    report = DropReport(
        p, seed, n_positives, n_dropped, n_dropped / n_positives if n_positives else 0.0, emptied
    )
    return result, report
