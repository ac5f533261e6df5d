"""Which given tags look wrong and which absent tags look missing: scores and targets in.

The audit reads a network's scores ``f (N, m)`` against the tags an image was given ``Y``
with what the RMLC loss knows about each tag. The loss compares every given tag ``j`` with
every absent tag ``k`` of the image (the ranking term, ``H(f_j - f_k)``) and each tag with
the decision boundary (the margin term, ``H(f_j)`` for a given tag, ``H(-f_k)`` for an
absent one), where ``H(t) = max(0, 1 - t)`` is the hinge. The ramp caps each of these at
``1 - s``: a term past the cap is one the loss has *filed as noise* and stopped learning
from. The audit keeps the hinge uncapped, so that it also says *how far* past the cap a
tag sits, and measures per tag (:func:`tag_disagreement`)

- for a given tag ``j``: ``d_j = (mean_{k not in Y} H(f_j - f_k) + H(f_j - theta_j)) / 2``:
  how far the absent tags outscore it, relative to the image's own tags, and how far it
  sits below the boundary;
- for an absent tag ``k``: ``d_k = (mean_{j in Y} H(f_j - f_k) + H(theta_k - f_k)) / 2``:
  how far it sits above the given tags, and above the boundary.

``d = 0`` is a tag the network agrees with by a margin of 1; ``d >= 1 - s`` (1.8 for the
paper's ``s = -0.8``) is a tag the ramp has capped on average, which the audit *flags*:
given tags as ``wrong``, absent ones as ``missing``. An image's score is its disagreement
per tag, ``sum_all d / max(1, |Y| + sum_{k not in Y} min(1, d_k / (1 - s)))``: the sum over
all its tags, divided by the size of its tag set as far as the network sees it, the given
tags plus the absent tags it believes present (an absent tag at the cap counts as a whole
tag). So an image with one wrong tag of two ranks above one with one wrong tag of five,
and an absent tag believed present weighs the same on an image with few or many absent
classes. ``benchmarks/bench_audit.py`` chose this, on a development seed, among
aggregations (half the mean over given plus half over absent tags, the mean over all
``m``, a soft Jaccard distance of capped terms) and per-tag terms (the ramp's capped ones,
either part alone, the flat-pair share), and measured it against the top-``|Y|`` rule and
cleanlab (docs/training.md, "Audit your tags").

Partial labels (``known``, e.g. a tags table with verified negatives): only known entries
are compared and scored. The pairs run between given tags and *known* absent tags, an
unknown tag gets ``d = 0`` and is never flagged, and an image's tag set counts only the
known absent tags it believes present.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import torch

from rmlc.atomic import atomic_write_text
from rmlc.labels import positive_mask_numpy, positives_csr

__all__ = [
    "AUDIT_COLUMNS",
    "AuditResult",
    "audit_labels",
    "image_scores",
    "tag_disagreement",
    "write_audit",
]

AUDIT_COLUMNS = ("image", "score", "wrong", "missing")
_CHUNK_ENTRIES = 1 << 22  # scores handled at once: rows x classes (32 MiB of float64)


@dataclass(frozen=True)
class AuditResult:
    """Images most suspect first.

    Attributes:
        images: ``(N,)`` int64 row of each image in the input, most suspect first (ties
            keep the input order).
        score: ``(N,)`` float64 score of each, in that order (larger: more likely
            mislabeled).
        wrong: per image, in that order, the class indices of the given tags flagged as
            absent, most suspect first.
        missing: per image, the class indices of the absent tags flagged as present.
    """

    images: np.ndarray
    score: np.ndarray
    wrong: list[np.ndarray]
    missing: list[np.ndarray]


def _as_scores(scores: object) -> np.ndarray:
    """float64 ``(N, m)`` finite scores of an array or tensor."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    array = np.asarray(scores)
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise ValueError(
            f"scores must be a numeric (N, m) matrix; got dtype {array.dtype}, shape {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
        raise ValueError(f"scores must be finite; rows {rows[:8].tolist()} are not")
    return array


def _positives(targets: object, shape: tuple[int, int]) -> scipy.sparse.csr_array | np.ndarray:
    """The given tags as a bool ``(N, m)`` array (dense input) or a CSR matrix (sparse)."""
    if scipy.sparse.issparse(targets):
        positives = positives_csr(targets, "targets")
    else:
        if isinstance(targets, torch.Tensor):
            targets = targets.detach().cpu().numpy()
        positives = positive_mask_numpy(np.asarray(targets), "targets")
    if positives.shape != shape:
        raise ValueError(f"targets have shape {positives.shape}, scores {shape}: they must match")
    return positives


def _thresholds(threshold: float | np.ndarray, m: int) -> np.ndarray:
    """``(1, m)`` per-class decision boundaries of a scalar or an ``(m,)`` array."""
    values = np.asarray(threshold, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(m, float(values))
    if values.shape != (m,) or not np.isfinite(values).all():
        raise ValueError(f"threshold must be a finite number or {m} finite numbers (one a class)")
    return values[None, :]


def _known(known: object, shape: tuple[int, int]) -> scipy.sparse.csr_array | np.ndarray | None:
    """The known entries as a bool ``(N, m)`` array or a CSR matrix (its stored entries)."""
    if known is None:
        return None
    if scipy.sparse.issparse(known):
        matrix = scipy.sparse.csr_array(known)
        if matrix.shape != shape:
            raise ValueError(f"known has shape {matrix.shape}, scores {shape}: they must match")
        return matrix
    if isinstance(known, torch.Tensor):
        known = known.detach().cpu().numpy()
    array = np.asarray(known)
    if array.shape != shape or array.dtype != bool:
        raise ValueError(
            f"known must be a bool (N, m) array of the scores' shape {shape}; got "
            f"{array.dtype} {array.shape}"
        )
    return array


def _rows(matrix: scipy.sparse.csr_array | np.ndarray, rows: slice) -> np.ndarray:
    """Dense bool rows of a bool array or of a CSR matrix's stored entries."""
    block = matrix[rows]
    return block.toarray().astype(bool) if scipy.sparse.issparse(block) else block


def _pair_means(f: np.ndarray, positive: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``mean_{k not in Y, known} H(f_j - f_k)`` at given tags and ``mean_{j in Y}
    H(f_j - f_k)`` at known absent ones (0 where the other group is empty, and at unknown
    entries): ``O(n m log m)`` time.

    A hinge ``max(0, 1 - f_j + f_k)`` is linear on the pairs it is positive on, so each
    sum is a count and a prefix sum of the other group's sorted scores.
    """
    values = torch.from_numpy(f)
    is_known = torch.from_numpy(known)
    is_positive = torch.from_numpy(positive) & is_known
    is_negative = ~is_positive & is_known
    inf = torch.tensor(np.inf, dtype=values.dtype)
    negatives = torch.where(is_negative, values, inf).sort(dim=1).values  # known absent first
    positives = torch.where(is_positive, values, inf).sort(dim=1).values  # given first

    def prefix(sorted_values: torch.Tensor) -> torch.Tensor:
        finite = torch.where(torch.isinf(sorted_values), 0.0, sorted_values)
        return torch.nn.functional.pad(finite.cumsum(dim=1), (1, 0))

    n_negative = is_negative.sum(dim=1, keepdim=True)
    n_positive = is_positive.sum(dim=1, keepdim=True)
    # given j: the absent k with f_k > f_j - 1 each add 1 - f_j + f_k
    below = torch.searchsorted(negatives, values - 1.0, right=True).clamp(max=n_negative)
    count = n_negative - below
    total = prefix(negatives).gather(1, n_negative) - prefix(negatives).gather(1, below)
    given = ((1.0 - values) * count + total) / n_negative.clamp(min=1)
    # absent k: the given j with f_j < f_k + 1 each add 1 - f_j + f_k
    under = torch.searchsorted(positives, values + 1.0, right=False).clamp(max=n_positive)
    absent = ((1.0 + values) * under - prefix(positives).gather(1, under)) / n_positive.clamp(min=1)
    return torch.where(is_positive, given, torch.where(is_negative, absent, 0.0)).numpy()


def tag_disagreement(
    scores: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor | scipy.sparse.sparray,
    threshold: float | np.ndarray = 0.0,
    known: np.ndarray | torch.Tensor | scipy.sparse.sparray | None = None,
) -> np.ndarray:
    """How far each tag is from what the network believes (see the module's notes).

    Args:
        scores: ``(N, m)`` scores of a network (logits; RMLC's margin term puts the
            boundary at 0).
        targets: ``(N, m)`` given tags: dense in {0, 1} or {-1, +1} (array or tensor), or a
            SciPy sparse matrix of the positives (as rmlc keeps tags tables).
        threshold: the decision boundary ``theta`` of the margin part: a number, or ``(m,)``
            one per class (a checkpoint's, chosen on validation).
        known: ``(N, m)`` the known entries (partial labels): a bool array or tensor, or a
            SciPy sparse matrix whose stored entries are the known ones (a tags table's
            positives plus its negatives); None: every entry is known.

    Returns:
        float64 ``(N, m)``: ``d >= 0``; at given tags, how strongly they look absent; at
        absent tags, how strongly they look present; 0 at unknown entries.
    """
    f = _as_scores(scores)
    positives = _positives(targets, f.shape)
    mask = _known(known, f.shape)
    theta = _thresholds(threshold, f.shape[1])
    result = np.empty_like(f)
    step = max(1, _CHUNK_ENTRIES // max(f.shape[1], 1))
    for start in range(0, f.shape[0], step):
        rows = slice(start, start + step)
        given = _rows(positives, rows)
        chunk = f[rows]
        is_known = np.ones_like(given) if mask is None else _rows(mask, rows) | given
        margin = np.where(
            given, np.maximum(0.0, 1.0 - chunk + theta), np.maximum(0.0, 1.0 + chunk - theta)
        )
        result[rows] = np.where(is_known, 0.5 * (_pair_means(chunk, given, is_known) + margin), 0.0)
    return result


def audit_labels(
    scores: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor | scipy.sparse.sparray,
    s: float = -0.8,
    threshold: float | np.ndarray = 0.0,
    cutoff: float | None = None,
    known: np.ndarray | torch.Tensor | scipy.sparse.sparray | None = None,
) -> AuditResult:
    """Score every image for how likely its tags are wrong or incomplete, and name the tags.

    Args:
        scores: ``(N, m)`` scores of a network (see :func:`tag_disagreement`).
        targets: ``(N, m)`` given tags, dense or SciPy sparse.
        s: the ramp's parameter of the loss, in ``(-1, 0]``: a tag is flagged when its
            disagreement reaches the ramp's cap ``1 - s``.
        threshold: the decision boundary (a number or one a class).
        cutoff: flag tags at this disagreement instead of ``1 - s``.
        known: the known entries (see :func:`tag_disagreement`): unknown tags are neither
            scored nor flagged.

    Returns:
        the images most suspect first, with their scores and flagged tags
        (:class:`AuditResult`).
    """
    if not (isinstance(s, int | float) and -1.0 < s <= 0.0):
        raise ValueError(f"s must lie in (-1, 0]; got {s!r}")
    cutoff = 1.0 - s if cutoff is None else float(cutoff)
    if not np.isfinite(cutoff) or cutoff < 0:
        raise ValueError(f"cutoff must be a finite number >= 0; got {cutoff!r}")
    d = tag_disagreement(scores, targets, threshold, known)
    given = _rows(_positives(targets, d.shape), slice(None))
    mask = _known(known, d.shape)
    score = image_scores(d, given, s)
    order = np.argsort(-score, kind="stable")
    flagged = d >= cutoff
    if mask is not None:
        flagged &= _rows(mask, slice(None)) | given
    wrong = [_most_first(d[i], given[i] & flagged[i]) for i in order]
    missing = [_most_first(d[i], ~given[i] & flagged[i]) for i in order]
    return AuditResult(order.astype(np.int64), score[order], wrong, missing)


def image_scores(d: np.ndarray, given: np.ndarray, s: float = -0.8) -> np.ndarray:
    """``(N,)`` disagreement per tag of each image (see the module's notes).

    Args:
        d: ``(N, m)`` :func:`tag_disagreement`.
        given: ``(N, m)`` bool, the given tags.
        s: the ramp's parameter: an absent tag counts in the tag set as
            ``min(1, d / (1 - s))``.
    """
    believed = np.where(given, 0.0, np.minimum(1.0, d / (1.0 - s))).sum(axis=1)
    return d.sum(axis=1) / np.maximum(1.0, given.sum(axis=1) + believed)


def _most_first(d: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Indices of the flagged entries of a row, the largest ``d`` first (ties: lower index)."""
    indices = np.flatnonzero(flagged)
    return indices[np.argsort(-d[indices], kind="stable")].astype(np.int64)


def write_audit(
    path: str | Path, result: AuditResult, images: list[str], class_names: list[str]
) -> None:
    """Write ``result`` as CSV: header ``image,score,wrong,missing``, one row per image in
    its order (most suspect first), tag names joined by ``|``."""
    if len(images) != len(result.images):
        raise ValueError(f"{len(images)} image names for {len(result.images)} audited images")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AUDIT_COLUMNS)
    for row, score, wrong, missing in zip(
        result.images, result.score, result.wrong, result.missing, strict=True
    ):
        writer.writerow(
            [
                images[row],
                f"{score:.6g}",
                "|".join(class_names[j] for j in wrong),
                "|".join(class_names[j] for j in missing),
            ]
        )
    atomic_write_text(buffer.getvalue(), path)
