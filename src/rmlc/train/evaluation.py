"""Evaluation in training: a network's outputs over a view of images, gathered once from
every process (tensors, :func:`rmlc.gather.gather_rows`), and every metric of
:mod:`rmlc.metrics` on them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from rmlc.gather import gather_rows
from rmlc.labels import positive_mask
from rmlc.metrics import Threshold, accuracy, mean_average_precision, topk_metrics
from rmlc.train.targets import SparseTargets

__all__ = ["batch_outputs", "split_metrics", "training_fit"]

_DENSE_TARGET_ROWS = 4096  # rows of targets densified at a time


@torch.no_grad()
def batch_outputs(
    model: nn.Module,
    head: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    prepare: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], torch.autocast],
    gather: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``head(prepare(images))`` of every batch of ``(uint8 images, indices (B,))``, with
    ``model`` in evaluation mode: ``(rows (n, ...) float32, indices (n,))`` on the CPU,
    gathered from every process and ordered by index, or (``gather`` False) this process's
    shard only, in its order. A process with no batches still joins the gathering."""
    model.eval()
    device = next(model.parameters()).device
    rows, indices = [], []
    for images, index in batches:
        images = prepare(images.to(device))
        with autocast():
            rows.append(head(images).float().cpu())
        indices.append(index)
    if rows:
        rows, indices = torch.cat(rows), torch.cat(indices)
    else:  # a shard with no images: still joins the gathering of the others
        rows, indices = torch.empty(0), torch.empty(0, dtype=torch.int64)
    return gather_rows(rows, indices) if gather else (rows, indices)


def split_metrics(
    scores: torch.Tensor,
    indices: torch.Tensor,
    targets: torch.Tensor | SparseTargets,
    k: int,
    threshold: Threshold,
    single_label: bool,
) -> dict[str, float]:
    """Every metric of :class:`rmlc.metrics.MultiLabelMeter` (``"accuracy"`` only for
    ``single_label`` data whose rows have one positive each), in percent.

    Args:
        scores: ``(n, m)`` gathered scores, one row per sample.
        indices: ``(n,)`` the samples' rows in ``targets``.
        targets: ``(N, m)`` the split's targets (dense or sparse), densified a block of
            rows at a time; sparse targets with verified negatives (partial labels) are
            scored over their known entries only (``known`` of the metrics).
        k: predictions per sample of the top-k metrics.
        threshold: the score a prediction needs (a float, ``(m,)`` per class, or None).
        single_label: whether the data set has one label per image.
    """
    positive = torch.empty(scores.shape, dtype=torch.bool)
    partial = isinstance(targets, SparseTargets) and targets.has_negatives
    known = torch.empty(scores.shape, dtype=torch.bool) if partial else None
    for start in range(0, len(scores), _DENSE_TARGET_ROWS):  # bounded dense targets
        rows = slice(start, start + _DENSE_TARGET_ROWS)
        positive[rows] = positive_mask(targets[indices[rows]])
        if known is not None:
            known[rows] = targets.known(indices[rows])
    metrics = topk_metrics(scores, positive, k, threshold, known=known)
    metrics["mAP"] = mean_average_precision(scores, positive, known=known)
    if single_label and known is None and bool((positive.sum(dim=1) == 1).all()):
        metrics["accuracy"] = accuracy(scores, positive)
    return metrics


def training_fit(
    scores: torch.Tensor,
    noisy: torch.Tensor,
    clean: torch.Tensor | None,
) -> dict[str, float]:
    """How the network fits its training labels: mAP against the (possibly corrupted)
    training labels (``fit_train_mAP``); with the clean labels known, also against them
    (``fit_clean_mAP``), and on the corrupted samples alone against their corrupted labels
    (``fit_corrupted_mAP``: it rises when the network memorises the noise).

    Args:
        scores: ``(n, m)`` scores of the labeled training samples.
        noisy: ``(n, m)`` their training labels.
        clean: ``(n, m)`` their clean labels, or None.
    """
    result = {"fit_train_mAP": mean_average_precision(scores, noisy)}
    if clean is not None:
        result["fit_clean_mAP"] = mean_average_precision(scores, clean)
        corrupted = (clean != noisy).any(dim=1)
        if corrupted.any():
            result["fit_corrupted_mAP"] = mean_average_precision(
                scores[corrupted], noisy[corrupted]
            )
    return result
