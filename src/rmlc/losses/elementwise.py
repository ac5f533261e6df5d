"""Per-label and softmax losses as pure tensor functions: BCE, softmax, ASL, GCE and LL-R.

Each maps ``(N, m)`` logits and the ``(N, m)`` positive labels (a bool mask or a 0/1 tensor)
to ``(N,)`` per-sample losses, differentiable by autograd, and takes an optional ``(N, m)``
bool ``known`` mask of the entries whose label is known (partial labels; ``None``: all
known). An unknown entry adds nothing to the loss and gets a zero gradient; with every
entry known the values are those of ``known=None``, bit for bit.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "asymmetric_per_sample",
    "bce_per_sample",
    "compute_dtype",
    "generalized_ce_per_sample",
    "known_sum",
    "large_loss_kept",
    "large_loss_rejection_per_sample",
    "rejection_count",
    "softmax_per_sample",
]


def compute_dtype(logits: torch.Tensor) -> torch.dtype:
    """Float64 logits are computed in float64, all others in float32."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def known_sum(losses: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """``sum_j`` of ``(N, m)`` elementwise losses over the known entries; ``(N,)``.

    Unknown entries are replaced by 0 (not multiplied by it), so a non-finite loss there
    neither reaches the sum nor the gradient.
    """
    if known is None:
        return losses.sum(dim=1)
    return torch.where(known, losses, 0.0).sum(dim=1)


def bce_per_sample(
    logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary relevance: ``sum_j`` binary cross-entropy with logits over known entries;
    ``(N,)``.

    ``positive`` is a bool mask or a 0/1 tensor, as for every per-sample loss here.
    """
    work = logits.to(compute_dtype(logits))
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        work, positive.to(work.dtype), reduction="none"
    )
    return known_sum(losses, known)


def softmax_per_sample(
    logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy against the target vector normalised to sum 1; ``(N,)``.

    A sample with no (known) positive label contributes 0. With ``known``, the softmax runs
    over the known labels only (an unknown label is neither a target nor a competitor) and
    the target is normalised over the known positives.
    """
    work = logits.to(compute_dtype(logits))
    target = positive.to(work.dtype)
    if known is not None:
        target = torch.where(known, target, 0.0)
        work = torch.where(known, work, torch.finfo(work.dtype).min)  # exp(...) = 0
    target = target / target.sum(dim=1, keepdim=True).clamp(min=1.0)
    return -(target * torch.log_softmax(work, dim=1)).sum(dim=1)


def asymmetric_per_sample(
    logits: torch.Tensor,
    positive: torch.Tensor,
    *,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float = 0.05,
    eps: float = 1e-8,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., ICCV 2021), summed over known labels; ``(N,)``.

    As the authors' reference ``AsymmetricLoss``: negatives' probabilities are shifted by
    ``clip``, focusing weights ``(1 - p_t)^gamma`` are treated as constants.
    """
    work = logits.to(compute_dtype(logits))
    target = positive.to(work.dtype)
    prob_pos = torch.sigmoid(work)
    prob_neg = 1.0 - prob_pos
    if clip > 0:
        prob_neg = (prob_neg + clip).clamp(max=1.0)
    log_likelihood = target * torch.log(prob_pos.clamp(min=eps)) + (1.0 - target) * torch.log(
        prob_neg.clamp(min=eps)
    )
    if gamma_neg > 0 or gamma_pos > 0:
        with torch.no_grad():
            prob_true = target * prob_pos + (1.0 - target) * prob_neg
            gamma = target * gamma_pos + (1.0 - target) * gamma_neg
            focus = torch.pow(1.0 - prob_true, gamma)
        log_likelihood = log_likelihood * focus
    return -known_sum(log_likelihood, known)


def generalized_ce_per_sample(
    logits: torch.Tensor, positive: torch.Tensor, q: float = 0.7, known: torch.Tensor | None = None
) -> torch.Tensor:
    """Generalized cross-entropy ``L_q`` (Zhang & Sabuncu, NeurIPS 2018) per label, summed
    over known labels; ``(N,)``.

    For each label the probability of its target, ``p = sigmoid(f)`` for a positive and
    ``1 - sigmoid(f) = sigmoid(-f)`` for a negative, costs ``(1 - p^q) / q``: ``q -> 0`` is
    the logistic loss (BCE), ``q = 1`` the mean absolute error ``1 - p``. Computed as
    ``-expm1(q log sigmoid(+-f)) / q``, finite for any finite logit.
    """
    work = logits.to(compute_dtype(logits))
    sign = 2.0 * positive.to(work.dtype) - 1.0
    log_p = torch.nn.functional.logsigmoid(sign * work)
    return known_sum(-torch.expm1(q * log_p) / q, known)


def large_loss_kept(
    losses: torch.Tensor, positive: torch.Tensor, count: int, known: torch.Tensor | None = None
) -> torch.Tensor:
    """Which entries Large-Loss Rejection keeps: ``(N, m)`` 0/1 of ``losses``' dtype.

    Among the negative entries (``positive`` 0, and known where ``known`` is given), those
    whose loss is at least the ``count``-th largest negative loss of the batch are rejected
    (every entry tied with it too, as the authors' ``torch.where(loss < threshold, ...)``);
    positives (and unknown entries) are never rejected: the caller leaves the unknown out.
    ``count`` beyond the number of negatives rejects every negative; 0 rejects none. Runs
    without a host sync (``count`` comes from the caller, not the values).
    """
    kept = torch.ones_like(losses)
    count = min(int(count), losses.numel())
    if count <= 0:
        return kept
    target = positive.to(losses.dtype)
    candidate = target == 0 if known is None else (target == 0) & known
    negative_losses = torch.where(candidate, losses.detach(), float("-inf"))
    threshold = torch.topk(negative_losses.flatten(), count).values[-1]
    rejected = candidate & (negative_losses >= threshold)
    return kept.masked_fill(rejected, 0.0)


def rejection_count(entries: int, rate: float) -> int:
    """``ceil(entries * rate)``, the authors' number of rejected entries, with the product
    rounded to 9 decimals first so that float noise (``0.1 + 0.2``) adds no entry."""
    return math.ceil(round(entries * rate, 9))


def large_loss_rejection_per_sample(
    logits: torch.Tensor, positive: torch.Tensor, rate: float, known: torch.Tensor | None = None
) -> torch.Tensor:
    """LL-R (Kim et al., CVPR 2022): BCE summed over labels without the rejected negatives.

    The batch's ``k = ceil(E rate)`` largest-loss negative entries are rejected
    (:func:`large_loss_kept`; ``E = N m`` counts every entry, positives included, as the
    authors' code). With ``known``, ``E`` counts the known entries (one host sync to read
    it) and only known negatives compete for rejection; unknown entries are left out. The
    rejection is a batch-level choice: a row's value depends on the other rows. Gradients
    flow through the kept entries only. ``(N,)``.
    """
    work = logits.to(compute_dtype(logits))
    target = positive.to(work.dtype)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(work, target, reduction="none")
    entries = losses.numel() if known is None else int(known.sum())
    kept = large_loss_kept(losses, target, rejection_count(entries, rate), known)
    return known_sum(losses * kept, known)
