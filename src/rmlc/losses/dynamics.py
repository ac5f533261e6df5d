"""Training-dynamics statistics of the ranking losses: where the ramp is flat, and who moves.

The ramp ``R_s`` has zero slope below ``s``: a positive label scored ``f < s`` gets no
gradient from the margin term, and a (positive, negative) pair with ``f_j - f_k < s`` none
from the ranking term. :func:`ramp_statistics` measures, on one batch, how much of the
problem sits there and how large each term's gradient is; the trainer logs it over steps
(``TrainConfig.dynamics_every``) to show collapse and recovery.
"""

from __future__ import annotations

import torch

from rmlc.losses import functional as F

__all__ = ["DYNAMICS_KEYS", "flat_pair_share", "ramp_statistics"]

DYNAMICS_KEYS = (
    "positive_flat",
    "negative_flat",
    "pair_flat",
    "pair_active",
    "positive_mean",
    "negative_mean",
    "positive_above_zero",
    "ranking_grad_norm",
    "margin_grad_norm",
)


def flat_pair_share(logits: torch.Tensor, positive: torch.Tensor, s: float) -> tuple[float, float]:
    """Shares of (positive, negative) pairs in the ranking ramp's flat and sloped parts.

    A pair ``(j, k)`` of a sample is *flat* when ``f_j - f_k <= s`` (the ramp's cap: no
    gradient) and *active* when ``s < f_j - f_k < 1``. ``O(N m log m)`` time and ``O(N m)``
    memory: negatives are sorted once per sample and each positive is located among them.

    Args:
        logits: ``(N, m)`` scores.
        positive: ``(N, m)`` bool mask of positive labels.

    Returns:
        ``(flat, active)``, fractions of all pairs of the batch (0 where there are none).
    """
    f = logits.detach().double()
    inf = torch.tensor(float("inf"), dtype=f.dtype, device=f.device)
    negatives = torch.where(positive, -inf, f).sort(dim=1).values  # positives first, as -inf
    num_negative = (~positive).sum(dim=1, keepdim=True)
    m = f.shape[1]
    # Negatives k with f_k >= f_j - s (flat) and with f_k > f_j - 1 (violating): counted as
    # m minus the number of sorted entries below each threshold.
    flat_threshold = torch.where(positive, f - s, inf)
    active_threshold = torch.where(positive, f - 1.0, inf)
    flat = m - torch.searchsorted(negatives, flat_threshold, right=False)
    violating = m - torch.searchsorted(negatives, active_threshold, right=True)
    flat = torch.where(positive, flat, 0).sum()
    violating = torch.where(positive, violating, 0).sum()
    pairs = (positive.sum(dim=1, keepdim=True) * num_negative).sum()
    if int(pairs) == 0:
        return 0.0, 0.0
    return float(flat) / float(pairs), float(violating - flat) / float(pairs)


def _gradient_norm(per_sample: torch.Tensor, logits: torch.Tensor) -> float:
    """Norm of ``d mean(per_sample) / d logits``."""
    (grad,) = torch.autograd.grad(per_sample.mean(), logits)
    return float(grad.norm())


def ramp_statistics(
    logits: torch.Tensor,
    positive: torch.Tensor,
    s: float = -0.8,
    beta: float = 1.0,
    kappa: float = 5.0,
) -> dict[str, float]:
    """Where a batch sits on the ramp, and the size of each term's gradient.

    Args:
        logits: ``(N, m)`` scores (detached here; the training graph is not touched).
        positive: ``(N, m)`` 0/1 or bool indicator of positive labels.
        s: the ramp's cap of the loss being diagnosed (for WARP or BCE runs, the paper's
            values show where a ramp *would* be flat).
        beta: the ramp's soft-cap slope of that loss.
        kappa: the margin term's weight of that loss.

    Returns:
        ``positive_flat``: share of positive labels with ``f <= s`` (margin term flat);
        ``negative_flat``: share of negative labels with ``-f <= s``; ``pair_flat`` and
        ``pair_active``: see :func:`flat_pair_share`; ``positive_mean``,
        ``negative_mean``: mean scores; ``positive_above_zero``: share of positives
        scored ``> 0`` (predicted at threshold 0); ``ranking_grad_norm`` and
        ``margin_grad_norm``: norms of the gradients of the batch-mean ranking term and of
        ``kappa`` times the margin term with respect to the logits (sampled ranks).
    """
    positive = positive.bool()
    f = logits.detach().double()
    negative = ~positive
    num_positive, num_negative = int(positive.sum()), int(negative.sum())
    pair_flat, pair_active = flat_pair_share(f, positive, s)
    with torch.enable_grad():
        leaf = f.clone().requires_grad_(True)
        # ranks from a generator of its own: measuring draws nothing from training's streams
        generator = torch.Generator(device=f.device).manual_seed(0)
        ranking = F.ranking_loss(
            leaf, positive, s=s, beta=beta, kappa=0.0, kernel="auto", generator=generator
        )
        ranking_norm = _gradient_norm(ranking, leaf)
        margin_norm = (
            _gradient_norm(kappa * F.margin_term(leaf, positive, s, beta), leaf) if kappa else 0.0
        )

    def share(mask: torch.Tensor, count: int) -> float:
        return float(mask.sum()) / count if count else 0.0

    def mean(mask: torch.Tensor, count: int) -> float:
        return float(f[mask].sum()) / count if count else 0.0

    return {
        "positive_flat": share(positive & (f <= s), num_positive),
        "negative_flat": share(negative & (-f <= s), num_negative),
        "pair_flat": pair_flat,
        "pair_active": pair_active,
        "positive_mean": mean(positive, num_positive),
        "negative_mean": mean(negative, num_negative),
        "positive_above_zero": share(positive & (f > 0), num_positive),
        "ranking_grad_norm": ranking_norm,
        "margin_grad_norm": margin_norm,
    }
