"""Rank estimates of WARP and RMLC: violator counts, sampled draws and harmonic weights.

For a positive label ``j`` of a sample, ``v_j`` negatives *violate* its margin
(``1 - f_j + f_k > 0``). The paper estimates the rank by drawing negatives uniformly at
random without replacement until the first violator; with ``q`` draws,
``r_j = floor((m - 1) / q)``. The weight of the positive is ``L(r) = sum_{a<=r} 1/a``.
Given ``v`` violators among ``n`` negatives, ``q`` is drawn from its exact distribution
without a loop: the smallest violator key of a random order is ``B ~ Beta(1, v)``, and
each of the ``n - v`` non-violators precedes it independently with probability ``B``, so
``q = 1 + Binomial(n - v, B)`` (REFERENCE-NOTES.md). Everything here runs without autograd.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch

__all__ = [
    "RankMode",
    "RankRounding",
    "draws_from_keys",
    "rank_weight_table",
    "rank_weights",
    "ranks_from_draws",
    "sample_draws",
    "violator_counts",
]

RankRounding = Literal["floor", "round"]
RankMode = Literal["sampled", "exact"]

_EULER_GAMMA = 0.5772156649015329


def rank_weights(ranks: torch.Tensor) -> torch.Tensor:
    """Harmonic rank weights ``L(r) = sum_{a=1..r} 1/a`` (``L(0) = 0``), elementwise.

    Computed as ``digamma(r + 1) + euler_gamma``, exact to floating-point precision.

    Args:
        ranks: non-negative integer-valued tensor, any shape.

    Returns:
        float64 tensor of the same shape.
    """
    weights = torch.special.digamma(ranks.to(torch.float64) + 1.0) + _EULER_GAMMA
    return weights.masked_fill(ranks == 0, 0.0)


def ranks_from_draws(
    draws: torch.Tensor, num_labels: int, rounding: RankRounding = "floor"
) -> torch.Tensor:
    """Rank estimate ``r = floor((m - 1) / q)`` (or rounded, halves up); 0 where ``q = 0``."""
    with torch.no_grad():
        q = draws.to(torch.int64).clamp(min=1)
        if rounding == "round":  # floor((m - 1) / q + 1/2) in exact integer arithmetic
            ranks = torch.div(2 * (num_labels - 1) + q, 2 * q, rounding_mode="floor")
        else:
            ranks = torch.div(num_labels - 1, q, rounding_mode="floor")
        return ranks.masked_fill(draws == 0, 0)


@functools.lru_cache(maxsize=64)
def rank_weight_table(
    num_labels: int,
    mode: RankMode,
    rounding: RankRounding,
    device: torch.device,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Lookup table of ``L(r)``, indexed by what the rank is computed from.

    ``mode="exact"``: indexed by the rank ``r`` itself (``0..m``). ``mode="sampled"``:
    indexed by the number of draws ``q`` (``0..m``), giving ``L(r(q))``; ``q = 0`` (no
    violator) maps to 0.
    """
    values = torch.arange(num_labels + 1, dtype=torch.int64)
    if mode == "sampled":
        values = ranks_from_draws(values, num_labels, rounding)
    return rank_weights(values).to(device=device, dtype=dtype)


def sample_draws(
    violators: torch.Tensor,
    num_negative: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample the number of draws ``q`` until the first violator, without replacement.

    Args:
        violators: violator counts ``v``, floating-point (integer-valued).
        num_negative: numbers of negatives ``n``, broadcastable to ``violators``.
        generator: optional ``torch.Generator`` on the tensors' device.

    Returns:
        int64 draws ``q`` in ``[1, n - v + 1]`` of the shape of ``violators``; 0 where
        ``v = 0``.
    """
    with torch.no_grad():
        v = violators if violators.is_floating_point() else violators.to(torch.float64)
        uniform = torch.rand(v.shape, dtype=v.dtype, device=v.device, generator=generator)
        # The smallest violator key is B = 1 - U^(1/v); v = 0 gives U^inf = 0 (masked below).
        smallest_violator_key = torch.rsub(uniform.pow_(v.reciprocal()), 1.0)
        before = torch.binomial(num_negative - v, smallest_violator_key, generator=generator)
        return before.add_(1.0).mul_(v.sign()).to(torch.int64)


def draws_from_keys(
    logits: torch.Tensor, positive: torch.Tensor, keys: torch.Tensor
) -> torch.Tensor:
    """Draws ``q`` for a *given* random order of the negatives (for tests and replays).

    Positive ``j`` of sample ``i`` scans the negatives in increasing ``keys[i, j, k]``;
    ``q`` is the position of the first violator. Costs ``O(N m^2)`` memory: training uses
    :func:`sample_draws`, which draws ``q`` from the same distribution in ``O(N m)``.

    Args:
        logits: ``(N, m)`` scores.
        positive: ``(N, m)`` bool mask.
        keys: ``(N, m, m)`` distinct keys; ``keys[i, j, k]`` orders negative ``k`` for
            positive ``j``.

    Returns:
        ``(N, m)`` int64 draws, 0 where a positive has no violator and at negatives.
    """
    with torch.no_grad():
        f = logits.detach()
        negative = ~positive
        violates = (1.0 - f[:, :, None] + f[:, None, :] > 0) & negative[:, None, :]
        violates &= positive[:, :, None]
        inf = torch.tensor(math.inf, dtype=keys.dtype, device=keys.device)
        first_key = torch.where(violates, keys, inf).amin(dim=2, keepdim=True)
        scanned = (keys <= first_key) & negative[:, None, :]
        return scanned.sum(dim=2).masked_fill(~violates.any(dim=2), 0)


def violator_counts(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Number of negatives violating each positive's margin, ``v_j = #{k: 1 - f_j + f_k > 0}``.

    Args:
        logits: ``(N, m)`` scores.
        positive: ``(N, m)`` bool mask.

    Returns:
        ``(N, m)`` int64 counts, 0 at negative entries.
    """
    with torch.no_grad():
        f = logits.detach()
        negatives_sorted = torch.sort(f.masked_fill(positive, -math.inf), dim=1).values
        first_violator = torch.searchsorted(negatives_sorted, f - 1.0, right=True)
        return (f.shape[1] - first_violator).masked_fill(~positive, 0)
