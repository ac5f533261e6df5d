"""The metric functions of :mod:`rmlc.metrics` (top-k P/R/F1, mAP, accuracy), in percent,
and their input checks; re-exported by the package, which documents them."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from rmlc.checks import check_choice, check_integer
from rmlc.labels import positive_mask, positive_mask_numpy

__all__ = [
    "Convention",
    "F1Mode",
    "Interpolation",
    "Threshold",
    "accuracy",
    "average_precision_per_class",
    "mean_average_precision",
    "topk_metrics",
    "topk_predictions",
]

F1Mode = Literal["harmonic", "mean"]
Convention = Literal["rmlc", "ml-gcn"]
Interpolation = Literal["none", "voc", "voc11"]
# A label's minimum score: one for all, one per class (``(m,)``), or None (top-k only).
Threshold = float | Sequence[float] | np.ndarray | torch.Tensor | None

TOPK_KEYS = ("P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O")
_F1_MODES = ("harmonic", "mean")
_CONVENTIONS = ("rmlc", "ml-gcn")
_INTERPOLATIONS = ("none", "voc", "voc11")

ArrayLike = torch.Tensor | np.ndarray


# ---------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------


def _as_tensor(values: ArrayLike, name: str) -> torch.Tensor:
    """Torch view (NumPy input is copied) of a tensor or array, detached and on the CPU."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got NumPy dtype {values.dtype}")
        return torch.from_numpy(np.array(values))  # a writable, contiguous copy
    raise TypeError(
        f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(values).__name__}"
    )


def _check_scores(
    scores: ArrayLike, name: str = "scores", allow_empty: bool = False
) -> torch.Tensor:
    """Validate a score matrix and return it as a CPU tensor ``(N, m)`` of its own floating
    dtype (the metrics convert it to float64 one block at a time).

    Raises:
        TypeError: not a tensor/array, or not of a floating dtype.
        ValueError: not 2-D, empty (``N = 0`` unless ``allow_empty``, or ``m = 0``), or
            holding NaN or infinite values.
    """
    tensor = _as_tensor(scores, name)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, m), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {tensor.dtype}")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has no classes (shape {tuple(tensor.shape)})")
    if tensor.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: no samples (N = 0)")
    block = _block_length(tensor.shape[1])  # torch.isfinite makes full-size temporaries
    finite = all(
        bool(torch.isfinite(tensor[start : start + block]).all())
        for start in range(0, tensor.shape[0], block)
    )
    if not finite:
        nan = int(torch.isnan(tensor).sum())
        inf = int(torch.isinf(tensor).sum())
        raise ValueError(f"{name} must be finite; found {nan} NaN and {inf} infinite values")
    return tensor


def _check_targets(targets: ArrayLike, shape: torch.Size, name: str = "targets") -> torch.Tensor:
    """Validate a target matrix of the given shape; return its boolean positive mask."""
    if isinstance(targets, np.ndarray):
        if targets.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got NumPy dtype {targets.dtype}")
        if targets.shape != tuple(shape):
            raise ValueError(
                f"{name} must have the shape of scores {tuple(shape)}, got {targets.shape}"
            )
        return torch.from_numpy(np.array(positive_mask_numpy(targets, name)))
    tensor = _as_tensor(targets, name)
    if tensor.shape != shape:
        raise ValueError(
            f"{name} must have the shape of scores {tuple(shape)}, got {tuple(tensor.shape)}"
        )
    return positive_mask(tensor, name)


def _check_threshold(threshold: Threshold, num_classes: int | None = None):
    """None, a float, or a float64 ``(m,)`` tensor of per-class thresholds."""
    if threshold is None:
        return None
    if isinstance(threshold, np.ndarray | torch.Tensor | list | tuple):
        values = torch.as_tensor(np.asarray(threshold, dtype=np.float64))
        if values.ndim != 1 or (num_classes is not None and len(values) != num_classes):
            raise ValueError(
                f"per-class thresholds must be one per class ({num_classes}); got shape "
                f"{tuple(values.shape)}"
            )
        if bool(torch.isnan(values).any()):
            raise ValueError("thresholds must not be NaN")
        return values
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(
            f"threshold must be a float, one float per class or None, got "
            f"{type(threshold).__name__}"
        )
    if np.isnan(float(threshold)):
        raise ValueError("threshold must not be NaN")
    return float(threshold)


def _check_known(known: ArrayLike | None, shape: torch.Size) -> torch.Tensor | None:
    """Validate an optional mask of known entries; return it as a bool CPU tensor."""
    if known is None:
        return None
    mask = _as_tensor(known, "known")
    if mask.dtype != torch.bool:
        raise TypeError(f"known must be a bool mask (True = label known), got {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(
            f"known must have the shape of scores {tuple(shape)}, got {tuple(mask.shape)}"
        )
    return mask


def _present_classes(positive: torch.Tensor, what: str) -> torch.Tensor:
    """Boolean ``(m,)`` mask of the classes with at least one positive; error if none."""
    present = positive.any(dim=0)
    if not bool(present.any()):
        raise ValueError(f"{what} needs at least one class with a positive target; found none")
    return present


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Elementwise ``numerator / denominator`` with ``0 / 0 -> 0`` (denominators >= 0)."""
    numerator = numerator.to(torch.float64)
    denominator = denominator.to(torch.float64)
    defined = denominator > 0
    return torch.where(defined, numerator / torch.where(defined, denominator, 1.0), 0.0)


def _harmonic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise harmonic mean ``2ab / (a + b)``, 0 where ``a + b = 0``."""
    return _safe_ratio(2 * a * b, a + b)


# Working memory is bounded by computing in blocks: top-k over blocks of rows (a sample's
# top k needs its whole row), average precision over blocks of columns (a class's ranking
# needs its whole column). Each block's float64 and int64 temporaries take about
# _BYTES_PER_ENTRY bytes per entry; a block holds at most _BLOCK_BYTES of them, so at
# m = 20,000 classes the metrics need a few hundred MiB beyond the scores themselves.
_BLOCK_BYTES = 256 * 2**20
_BYTES_PER_ENTRY = 96  # measured: 70-90 bytes per entry (benchmarks/bench_sparse_labels.py)


def _block_length(other_side: int) -> int:
    """Rows (or columns) per block when the other dimension has ``other_side`` entries."""
    return max(1, _BLOCK_BYTES // (_BYTES_PER_ENTRY * max(other_side, 1)))


def _count_positives(positive: torch.Tensor, dim: int) -> torch.Tensor:
    """int64 counts of a bool ``(N, m)`` mask along ``dim`` (``0``: per class, ``1``: per
    sample), in row blocks: ``positive.sum(dim)`` makes an int64 copy of the whole mask."""
    block = _block_length(positive.shape[1])
    parts = [
        positive[start : start + block].sum(dim=dim) for start in range(0, positive.shape[0], block)
    ]
    if dim == 1:
        return torch.cat([torch.zeros(0, dtype=torch.int64), *parts])
    return sum(parts, torch.zeros(positive.shape[1], dtype=torch.int64))


# ---------------------------------------------------------------------------------------
# Top-k precision / recall / F1
# ---------------------------------------------------------------------------------------


def topk_predictions(scores: torch.Tensor, k: int, threshold: Threshold) -> torch.Tensor:
    """Boolean ``(N, m)`` prediction matrix of the ML-GCN protocol (inputs already valid).

    A label is predicted for a sample when it is among the sample's ``k`` highest scores
    and its score is ``>= threshold`` (per class for an ``(m,)`` threshold;
    ``threshold=None``: exactly the top ``k``). Ties are
    broken by the lower class index (stable descending sort); ``k > m`` is clipped to ``m``.
    """
    num_classes = scores.shape[1]
    k = min(k, num_classes)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    predicted = torch.zeros_like(scores, dtype=torch.bool)
    predicted.scatter_(1, order[:, :k], True)
    if threshold is not None:
        predicted &= scores >= torch.as_tensor(threshold, dtype=scores.dtype)
    return predicted


def topk_metrics(
    scores: ArrayLike,
    targets: ArrayLike,
    k: int = 3,
    threshold: Threshold = 0.0,
    f1c: F1Mode = "harmonic",
    convention: Convention = "rmlc",
    known: ArrayLike | None = None,
) -> dict[str, float]:
    """Per-class and overall precision, recall and F1 of the top-k predictions, in percent.

    A label counts as predicted for a sample when it is among the sample's ``k`` highest
    scores and its score is ``>= threshold`` (``threshold=None``: exactly the top ``k``).
    Ties in the top k are broken by the lower class index; ``k > m`` is clipped to ``m``.

    With, per class ``c``, ``Nc`` correct predictions, ``Np`` predictions and ``Ng``
    ground-truth positives:

    * ``P-C`` = mean over classes of ``Nc / Np`` (a class never predicted has precision 0),
      ``R-C`` = mean of ``Nc / Ng``. ``F1-C`` is ``2 P-C R-C / (P-C + R-C)`` for
      ``f1c="harmonic"`` (ML-GCN) or the mean of the per-class F1 for ``f1c="mean"`` (SRN).
      Classes with no positive in ``targets`` are left out of these per-class means.
    * ``P-O`` = ``sum Nc / sum Np``, ``R-O`` = ``sum Nc / sum Ng``, ``F1-O`` their harmonic
      mean, summed over all classes (a prediction of a class without positives is a false
      positive and lowers ``P-O``). ``0 / 0`` counts as 0.

    ``convention="ml-gcn"`` reproduces the metric code most published top-3 tables came from
    (ML-GCN's ``util.py``, ``evaluation``): it sets ``Np = 1`` for each class never predicted
    before summing, so each such class adds a phantom prediction to ``P-O``'s denominator
    (up to about 1 point lower here). It also averages the per-class values over every class
    and so needs every class to have a positive (ML-GCN's would be NaN). The other values
    are the same. Use it to compare with published numbers; the default is the definition.

    Args:
        scores: ``(N, m)`` floating scores (tensor or array), finite.
        targets: ``(N, m)`` with values in {0, 1} or in {-1, +1} (or bool).
        k: number of top-scored labels considered per sample, ``>= 1``.
        threshold: minimum score of a predicted label, one per class (``(m,)``, e.g. from
            :func:`rmlc.thresholds.choose_threshold`), or ``None`` for no minimum.
        f1c: ``"harmonic"`` or ``"mean"``, how ``F1-C`` is formed.
        convention: ``"rmlc"`` (the definition above) or ``"ml-gcn"``.
        known: optional ``(N, m)`` bool mask of the known entries (partial labels). The
            top ``k`` are still chosen among all labels, but an unknown entry counts in
            none of ``Nc``, ``Np``, ``Ng``: each class is scored over the images where it
            is known, and classes without a known positive are left out.

    Returns:
        dict with keys ``"P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O"``, values in percent.

    Raises:
        TypeError, ValueError: invalid inputs (see the module), or no class with a positive.
    """
    score_matrix = _check_scores(scores)
    positive = _check_targets(targets, score_matrix.shape)
    known = _check_known(known, score_matrix.shape)
    if known is not None:
        positive = positive & known
    k = check_integer(k, "k", 1)
    threshold = _check_threshold(threshold, score_matrix.shape[1])
    check_choice(f1c, _F1_MODES, "f1c")
    check_choice(convention, _CONVENTIONS, "convention")
    present = _present_classes(positive, "topk_metrics")
    if convention == "ml-gcn" and not bool(present.all()):
        missing = torch.nonzero(~present).flatten().tolist()
        raise ValueError(
            f"convention='ml-gcn' needs a positive in every class (ML-GCN's R-C would be NaN); "
            f"classes {missing[:10]} have none"
        )

    num_correct = torch.zeros(score_matrix.shape[1], dtype=torch.int64)
    num_predicted = torch.zeros_like(num_correct)
    block = _block_length(score_matrix.shape[1])
    for start in range(0, score_matrix.shape[0], block):
        rows = slice(start, start + block)
        predicted = topk_predictions(score_matrix[rows].double(), k, threshold)
        if known is not None:
            predicted &= known[rows]
        num_correct += (predicted & positive[rows]).sum(dim=0)
        num_predicted += predicted.sum(dim=0)
    num_positive = _count_positives(positive, dim=0)

    class_precision = _safe_ratio(num_correct, num_predicted)[present]
    class_recall = _safe_ratio(num_correct, num_positive)[present]
    mean_precision = class_precision.mean()
    mean_recall = class_recall.mean()
    if f1c == "harmonic":
        class_f1 = _harmonic(mean_precision, mean_recall)
    else:
        class_f1 = _harmonic(class_precision, class_recall).mean()

    if convention == "ml-gcn":  # ML-GCN: Np[Np == 0] = 1, before sum(Np)
        num_predicted = num_predicted.clamp(min=1)
    overall_precision = _safe_ratio(num_correct.sum(), num_predicted.sum())
    overall_recall = _safe_ratio(num_correct.sum(), num_positive.sum())
    overall_f1 = _harmonic(overall_precision, overall_recall)

    values = (mean_precision, mean_recall, class_f1, overall_precision, overall_recall, overall_f1)
    return {key: float(value) * 100.0 for key, value in zip(TOPK_KEYS, values, strict=True)}


# ---------------------------------------------------------------------------------------
# Mean average precision
# ---------------------------------------------------------------------------------------


def _reverse_cumulative(values: torch.Tensor, op: str) -> torch.Tensor:
    """``cummin`` / ``cummax`` along dim 0 taken from the last row backwards."""
    flipped = torch.flip(values, dims=[0])
    result = torch.cummin(flipped, dim=0) if op == "min" else torch.cummax(flipped, dim=0)
    return torch.flip(result.values, dims=[0])


def average_precision_per_class(
    scores: torch.Tensor, positive: torch.Tensor, interpolation: Interpolation = "none"
) -> torch.Tensor:
    """Average precision of every column, as a fraction (inputs already valid).

    The precision-recall curve has one point per distinct score (tied scores enter
    together, as in scikit-learn). With ``P_n``, ``R_n`` at the ``n``-th distinct score
    in decreasing order:

    * ``"none"``: ``sum_n (R_n - R_{n-1}) P_n``, scikit-learn's ``average_precision_score``.
    * ``"voc"``: the same sum with ``P_n`` replaced by ``max_{j >= n} P_j`` (VOC 2010+).
    * ``"voc11"``: mean over ``t = 0, 0.1, ..., 1`` of ``max {P_n : R_n >= t}`` (0 when no
      point reaches ``t``; VOC2007), ``R_n >= t`` decided exactly in integers.

    Args:
        scores: ``(N, m)`` float64 scores.
        positive: ``(N, m)`` bool; every column needs at least one positive.
        interpolation: ``"none"``, ``"voc"`` or ``"voc11"``.

    Returns:
        ``(m,)`` float64 average precisions in [0, 1].
    """
    num_samples = scores.shape[0]
    sorted_scores, order = torch.sort(scores, dim=0, descending=True, stable=True)
    sorted_positive = positive.gather(0, order)
    true_positives = torch.cumsum(sorted_positive, dim=0, dtype=torch.int64)  # (N, m)
    num_positive = true_positives[-1]  # (m,)
    ranks = torch.arange(1, num_samples + 1, dtype=torch.float64).unsqueeze(1)
    precision = true_positives.to(torch.float64) / ranks

    # Curve points are the last rows of tie groups; map every row to its group's end.
    is_group_end = torch.ones_like(sorted_positive)
    is_group_end[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    row_index = torch.arange(num_samples).unsqueeze(1).expand_as(scores)
    group_end = _reverse_cumulative(torch.where(is_group_end, row_index, num_samples), "min")

    if interpolation == "none":
        point_precision = precision.gather(0, group_end)
    else:
        # Envelope: best precision at any curve point at or after this row.
        masked = torch.where(is_group_end, precision, 0.0)
        envelope = _reverse_cumulative(masked, "max")
        if interpolation == "voc":
            point_precision = envelope.gather(0, group_end)
        else:
            tenfold_recall = (true_positives.gather(0, group_end) * 10).T.contiguous()  # (m, N)
            levels = torch.arange(11, dtype=torch.int64)
            required = levels.unsqueeze(0) * num_positive.unsqueeze(1)  # (m, 11)
            first_row = torch.searchsorted(tenfold_recall, required)  # (m, 11), N if none
            padded = torch.cat([envelope, envelope.new_zeros(1, envelope.shape[1])], dim=0)
            return padded.T.gather(1, first_row).mean(dim=1)
    # Each positive raises recall by 1 / Ng at its group's curve point.
    return (sorted_positive * point_precision).sum(dim=0) / num_positive


def mean_average_precision(
    scores: ArrayLike,
    targets: ArrayLike,
    interpolation: Interpolation = "none",
    known: ArrayLike | None = None,
) -> float:
    """Mean over classes of the average precision, in percent.

    Classes with no positive in ``targets`` are left out of the mean. With
    ``interpolation="none"`` the result equals
    ``sklearn.metrics.average_precision_score(targets[:, keep], scores[:, keep]) * 100``
    (tied scores are one point of the precision-recall curve); ``"voc"`` is the VOC 2010+
    all-point interpolated AP and ``"voc11"`` the VOC2007 11-point AP
    (see :func:`average_precision_per_class`).

    Args:
        scores: ``(N, m)`` floating scores (tensor or array), finite.
        targets: ``(N, m)`` with values in {0, 1} or in {-1, +1} (or bool).
        interpolation: ``"none"``, ``"voc"`` or ``"voc11"``.
        known: optional ``(N, m)`` bool mask of the known entries (partial labels): the AP
            of class ``c`` is taken over the images where ``c`` is known (Open Images'
            evaluation), equal to scikit-learn's on that subset; classes without a known
            positive are left out.

    Returns:
        mAP in percent.

    Raises:
        TypeError, ValueError: invalid inputs, or no class with a positive.
    """
    score_matrix = _check_scores(scores)
    positive = _check_targets(targets, score_matrix.shape)
    known = _check_known(known, score_matrix.shape)
    if known is not None:
        positive = positive & known
    check_choice(interpolation, _INTERPOLATIONS, "interpolation")
    present = _present_classes(positive, "mean_average_precision")
    columns = torch.nonzero(present).flatten()
    per_class = []
    for block in columns.split(_block_length(score_matrix.shape[0])):
        block_scores = score_matrix[:, block].double()
        if known is not None:  # unknown entries: one tie group below every known score,
            # after the last positive, where it changes no AP (any interpolation)
            block_scores.masked_fill_(~known[:, block], -torch.inf)
        per_class.append(
            average_precision_per_class(block_scores, positive[:, block], interpolation)
        )
    return float(torch.cat(per_class).mean()) * 100.0


# ---------------------------------------------------------------------------------------
# Single-label accuracy
# ---------------------------------------------------------------------------------------


def accuracy(scores: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy of single-label data, in percent.

    The predicted class is the argmax of each score row (ties: the lower class index).

    Args:
        scores: ``(N, m)`` floating scores (tensor or array), finite.
        labels: ``(N,)`` integer class indices in ``[0, m)``, or ``(N, m)`` rows in
            {0, 1} or {-1, +1} with exactly one positive (the true class).

    Returns:
        accuracy in percent.

    Raises:
        TypeError, ValueError: invalid inputs, an index out of range, or a label row
            without exactly one positive.
    """
    score_matrix = _check_scores(scores)
    num_samples, num_classes = score_matrix.shape
    label_tensor = _as_tensor(labels, "labels")
    if label_tensor.ndim == 1:
        if label_tensor.dtype == torch.bool or label_tensor.is_floating_point():
            raise TypeError(f"labels of shape (N,) must be integers, got {label_tensor.dtype}")
        if label_tensor.shape[0] != num_samples:
            raise ValueError(
                f"labels must have N = {num_samples} entries, got {label_tensor.shape[0]}"
            )
        if bool(((label_tensor < 0) | (label_tensor >= num_classes)).any()):
            raise ValueError(
                f"labels must be class indices in [0, {num_classes}); found values in "
                f"[{int(label_tensor.min())}, {int(label_tensor.max())}]"
            )
        true_class = label_tensor.to(torch.int64)
    elif label_tensor.ndim == 2:
        positive = _check_targets(labels, score_matrix.shape, "labels")
        positives_per_row = _count_positives(positive, dim=1)
        bad_rows = torch.nonzero(positives_per_row != 1).flatten()
        if bad_rows.numel() > 0:
            row = int(bad_rows[0])
            raise ValueError(
                f"labels rows must have exactly one positive (single-label data); "
                f"{bad_rows.numel()} rows do not, e.g. row {row} has "
                f"{int(positives_per_row[row])}"
            )
        true_class = positive.to(torch.int64).argmax(dim=1)
    else:
        raise ValueError(
            f"labels must be (N,) indices or (N, m) rows, got shape {tuple(label_tensor.shape)}"
        )
    predicted_class = score_matrix.argmax(dim=1)
    return float((predicted_class == true_class).to(torch.float64).mean()) * 100.0
