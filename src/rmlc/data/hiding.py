"""Hiding tags: known entries made unknown, the partial-label settings of a benchmark.

Where :func:`~rmlc.data.drop_positives` turns hidden positives into negatives (what a
network is taught when absent means negative), these functions return a *known* mask: the
entries a partial-label learner may use. A tags table writes them as positives plus
verified ``negatives`` (:mod:`rmlc.data.tags_table`).

- :func:`hide_tags`: each known entry, positive or negative alike, is hidden independently
  with probability ``p`` (for one seed the hidden sets are nested in ``p``). ``p = 0.5``
  hides half of each image's positive tags and leaves half of its negatives verified.
- :func:`keep_single_positive`: the single-positive setting: one positive tag per image,
  drawn uniformly among its positives, is known; nothing is verified absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmlc.checks import check_fraction, check_seed
from rmlc.data._common import derive_seed
from rmlc.labels import positive_mask_numpy

__all__ = ["HideReport", "hide_tags", "keep_single_positive"]

_HIDE_TAG, _SINGLE_TAG = 0x686964, 0x736E67


@dataclass(frozen=True)
class HideReport:
    """What :func:`hide_tags` or :func:`keep_single_positive` hid.

    Attributes:
        n_positives, n_negatives: known positive and negative entries before.
        hidden_positives, hidden_negatives: of those, how many are now unknown.
        emptied_rows: sorted int64 indices of rows left with no known entry.
    """

    n_positives: int
    n_negatives: int
    hidden_positives: int
    hidden_negatives: int
    emptied_rows: np.ndarray

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable fields (``emptied_rows`` as a list)."""
        return {
            "n_positives": self.n_positives,
            "n_negatives": self.n_negatives,
            "hidden_positives": self.hidden_positives,
            "hidden_negatives": self.hidden_negatives,
            "emptied_rows": self.emptied_rows.tolist(),
        }


def _inputs(targets: np.ndarray, known: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"targets must have shape (N, m), got shape {targets.shape}")
    positive = positive_mask_numpy(targets, "targets")
    if known is None:
        return positive, np.ones(positive.shape, dtype=bool)
    known = np.asarray(known)
    if known.shape != positive.shape or known.dtype != bool:
        raise ValueError(
            f"known must be a bool array of shape {positive.shape}, got {known.dtype} {known.shape}"
        )
    return positive, known


def _report(positive: np.ndarray, before: np.ndarray, after: np.ndarray) -> HideReport:
    hidden = before & ~after
    return HideReport(
        n_positives=int((before & positive).sum()),
        n_negatives=int((before & ~positive).sum()),
        hidden_positives=int((hidden & positive).sum()),
        hidden_negatives=int((hidden & ~positive).sum()),
        emptied_rows=np.flatnonzero(before.any(axis=1) & ~after.any(axis=1)).astype(np.int64),
    )


def hide_tags(
    targets: np.ndarray, p: float, seed: int = 0, known: np.ndarray | None = None
) -> tuple[np.ndarray, HideReport]:
    """Hide each known entry independently with probability ``p``.

    Args:
        targets: ``(N, m)`` in {0, 1}, {-1, +1} or bool (the positives).
        p: hiding probability in ``[0, 1]``.
        seed: seed (the draw is independent of the corruption's and dropping's streams).
        known: bool ``(N, m)`` entries known before (default: all, absent = negative).

    Returns:
        the bool ``(N, m)`` known mask after hiding, and a :class:`HideReport`.
    """
    p, seed = check_fraction(p, "p"), check_seed(seed)
    positive, before = _inputs(targets, known)
    uniform = np.random.default_rng(derive_seed(seed, _HIDE_TAG)).random(positive.shape)
    after = before & ~(uniform < p)
    return after, _report(positive, before, after)


def keep_single_positive(
    targets: np.ndarray, seed: int = 0, known: np.ndarray | None = None
) -> tuple[np.ndarray, HideReport]:
    """Keep one known positive per row (drawn uniformly), hide everything else.

    Args:
        targets: ``(N, m)`` in {0, 1}, {-1, +1} or bool.
        seed: seed.
        known: bool ``(N, m)`` entries known before (default: all).

    Returns:
        the bool ``(N, m)`` known mask (one True per row with a known positive, none
        elsewhere), and a :class:`HideReport`.
    """
    seed = check_seed(seed)
    positive, before = _inputs(targets, known)
    candidates = positive & before
    keys = np.random.default_rng(derive_seed(seed, _SINGLE_TAG)).random(positive.shape)
    keys = np.where(candidates, keys, -1.0)  # the largest key among a row's positives wins
    chosen = keys.argmax(axis=1)
    after = np.zeros_like(before)
    rows = np.flatnonzero(candidates.any(axis=1))
    after[rows, chosen[rows]] = True
    return after, _report(positive, before, after)
