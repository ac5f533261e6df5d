"""Pure tensor kernels of the losses (METHOD.md; paper Eq. 1, 6, 7, 8).

Notation, per sample with scores ``f`` (a row of the logits): positives ``C+``, negatives
``C-``, ``m`` labels. For a positive ``j`` the negative ``k`` *violates* the margin by
``u = 1 - f_j + f_k`` when ``u > 0``. The ranking term of RMLC and WARP is
``sum_{j in C+} L(r_j) sum_{k in C-} P(u_jk)`` with the penalty ``P`` a ramp (RMLC), a soft
ramp (the authors' code) or a hinge (WARP), all written as functions of ``u``:
``P(u) = clamp(u, 0, 1 - s) + (1 - beta) relu(u - (1 - s))``.

The forward pass computes, without autograd, each sample's loss and its gradient with
respect to every score (the subgradients of Eq. 7 and 8: a pair contributes while
``0 < u < 1 - s``, i.e. ``s < f_j - f_k < 1``, ties excluded); the backward pass multiplies
that gradient by the incoming one. The ranks are drawn once, in the forward pass.

Four exact kernels compute the ranking term (same results, tested alike); the margin term
is elementwise and shared:

* ``"fused"``: one compiled program per sample, margin term included, a handful of
  operations per call instead of dozens: on CPU a numba loop (:mod:`rmlc.losses.fused`),
  on a GPU a Triton kernel (:mod:`rmlc.losses.fused_triton`), one launch for the batch.
  The fastest on both for the usual few positives per image.
* ``"pairs"``: one row of ``m`` scores per positive label (``P`` rows), so ``O(P m)``
  work with few operations.
* ``"sorted"``: each sample's positive thresholds ``f_j - 1`` are sorted, every score is
  located among them by ``searchsorted``, and the pairwise sums become prefix sums read at
  those positions: ``O(N m log K)`` work and ``O(N m)`` memory whatever the number of
  positives, for many labels and many positives per image.
* ``"dense"``: blocks of ``(N, c, m)`` pairs, every label a candidate positive, without
  any host-device synchronisation: the GPU choice without Triton, where a sync would
  stall the pipeline and the extra arithmetic is free.

``kernel="auto"`` takes ``fused`` on CUDA (without Triton or beyond 16384 labels ``dense``,
and ``sorted`` beyond 64 M pairs), and on CPU ``fused`` or, with many positives per image,
``sorted`` (``pairs`` and ``sorted`` when numba is missing). No kernel builds
``(N, m, m)``: the fused kernels' extra memory is ``O(m)`` per sample, the pairs and sorted
kernels' ``O(N m)``, the dense kernel's blocks hold at most about 4 M pairs.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

from rmlc.checks import check_choice
from rmlc.losses import fused_triton
from rmlc.losses.elementwise import (
    asymmetric_per_sample,
    bce_per_sample,
    generalized_ce_per_sample,
    large_loss_kept,
    large_loss_rejection_per_sample,
    rejection_count,
    softmax_per_sample,
)
from rmlc.losses.elementwise import compute_dtype as _compute_dtype
from rmlc.losses.fused_triton import fused_triton_kernel
from rmlc.losses.ranks import RankMode, RankRounding, rank_weight_table, sample_draws
from rmlc.losses.terms import RankingTerms

try:  # numba is a dependency; without it (a platform it does not support yet) CPU runs in torch
    from rmlc.losses.fused import fused_kernel
except ImportError as error:  # pragma: no cover - exercised by monkeypatching in the tests
    fused_kernel = None
    warnings.warn(
        f"numba could not be imported ({error}): the RMLC and WARP losses on CPU run their "
        "torch kernels instead, about 2-3x slower (benchmarks/results/losses-cpu.md)",
        RuntimeWarning,
        stacklevel=2,
    )

__all__ = [
    "KERNELS",
    "Kernel",
    "RankingTerms",
    "asymmetric_per_sample",
    "balanced_margin_term",
    "balanced_margin_weights",
    "bce_per_sample",
    "choose_cuda_kernel",
    "choose_kernel",
    "generalized_ce_per_sample",
    "hinge",
    "large_loss_kept",
    "large_loss_rejection_per_sample",
    "margin_term",
    "ramp",
    "ranking_loss",
    "rejection_count",
    "softmax_per_sample",
    "transductive_hinge",
    "violation_penalty",
]

Kernel = Literal["auto", "fused", "pairs", "sorted", "dense"]
KERNELS = ("auto", "fused", "pairs", "sorted", "dense")

# A shift that puts a score beyond every other score of its row (finite, with room to spare).
_EXCLUDED = {dtype: torch.finfo(dtype).max / 4 for dtype in (torch.float32, torch.float64)}
# The pairs kernel handles at most this many rows of m violations at once, per sample.
_ROWS_PER_SAMPLE, _MIN_CHUNK_ROWS = 4, 256
# The dense kernel forms at most this many pairs at once, and is chosen on CUDA up to this
# many pairs in all (beyond, the sorted kernel: one host sync, far less arithmetic).
_DENSE_BLOCK_PAIRS, _DENSE_MAX_PAIRS = 1 << 22, 1 << 26
# On CPU the fused kernel is chosen up to this many positives per sample, beyond the sorted
# (at (256, 1000) the fused kernel was still 1.3x faster at 300: benchmarks/bench_losses.py).
_FUSED_POSITIVES_PER_SAMPLE = 300


def hinge(t: torch.Tensor, a: float = 1.0) -> torch.Tensor:
    """Hinge ``H_a(t) = max(0, a - t)``, elementwise (autograd)."""
    return torch.relu(a - t)


def ramp(t: torch.Tensor, s: float = -0.8, beta: float = 1.0) -> torch.Tensor:
    """Ramp ``R_s(t) = H_1(t) - beta * H_s(t)``, elementwise (autograd).

    ``beta = 1`` is the paper's ramp, capped at ``1 - s``; ``beta = 0.9`` is the authors'
    "soft ramp" (slope 0.1 below ``s``); ``beta = 0`` is the hinge ``H_1``. The slope is
    -1 for ``s < t < 1`` and ``beta - 1`` for ``t <= s`` (Eq. 7, 8 at the ties).
    """
    below = (1.0 - s) + (1.0 - beta) * (s - t)
    return torch.where(t >= 1.0, 0.0, torch.where(t <= s, below, 1.0 - t))


def transductive_hinge(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample transductive term of paper Eq. 4, ``sum_j H_1(|f_j|)``; ``(N,)`` (autograd).

    Pushes scores of unlabeled samples away from 0 (low-density separation); the paper
    found it weaker than label propagation and it is kept as an ablation.
    """
    return hinge(logits.abs()).sum(dim=1)


def margin_term(
    logits: torch.Tensor,
    positive: torch.Tensor,
    s: float = -0.8,
    beta: float = 1.0,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample margin term ``sum_j R_s(y_j f_j)``, ``y = +1`` on positives, -1 else.

    Args:
        logits: ``(N, m)`` scores.
        positive: ``(N, m)`` bool mask.
        known: optional ``(N, m)`` bool mask: the sum runs over known entries only.

    Returns:
        ``(N,)``, differentiable by autograd.
    """
    terms = ramp(torch.where(positive, logits, -logits), s, beta)
    return (terms if known is None else torch.where(known, terms, 0.0)).sum(dim=1)


def balanced_margin_weights(
    positive: torch.Tensor, dtype: torch.dtype, known: torch.Tensor | None = None
) -> torch.Tensor:
    """``(N, m)`` weights ``m / (2 |C+|)`` on positives and ``m / (2 |C-|)`` on negatives.

    With a ``(N, m)`` bool ``known`` mask, ``m``, ``C+`` and ``C-`` count the known entries
    of each row only, and unknown entries weigh 0.
    """
    if known is None:
        m = positive.shape[1]
        num_positive = positive.sum(dim=1, keepdim=True).to(dtype)
        return torch.where(
            positive,
            m / (2.0 * num_positive.clamp(min=1.0)),
            m / (2.0 * (m - num_positive).clamp(min=1.0)),
        )
    positive = positive & known
    num_positive = positive.sum(dim=1, keepdim=True).to(dtype)
    size = known.sum(dim=1, keepdim=True).to(dtype)
    # reciprocal() * size: the operation order of ``m / tensor``, so all-known is bit-equal
    weights = torch.where(
        positive,
        (2.0 * num_positive.clamp(min=1.0)).reciprocal() * size,
        (2.0 * (size - num_positive).clamp(min=1.0)).reciprocal() * size,
    )
    return torch.where(known, weights, 0.0)


def _scaled_gradient(ctx, grad_output: torch.Tensor) -> torch.Tensor:
    """Backward of a per-sample loss whose ``(N, m)`` gradient the forward pass saved."""
    (grad,) = ctx.saved_tensors
    scaled = grad_output.unsqueeze(1) * grad
    return scaled if scaled.dtype == ctx.logits_dtype else scaled.to(ctx.logits_dtype)


class _BalancedMarginFunction(torch.autograd.Function):
    """Per-sample balanced margin term; its gradient is formed in the forward pass."""

    @staticmethod
    def forward(
        ctx,
        logits: torch.Tensor,
        positive: torch.Tensor,
        s: float,
        beta: float,
        known: torch.Tensor | None,
    ):
        f = logits.detach().to(_compute_dtype(logits))
        per_sample, grad = f.new_zeros(f.shape[0]), torch.zeros_like(f)
        weight = balanced_margin_weights(positive, f.dtype, known)
        _add_margin_term(f, positive.to(f.dtype), per_sample, grad, s, beta, weight, known)
        ctx.save_for_backward(grad)
        ctx.logits_dtype = logits.dtype
        return per_sample

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        return _scaled_gradient(ctx, grad_output), None, None, None, None


def balanced_margin_term(
    logits: torch.Tensor,
    positive: torch.Tensor,
    s: float = -0.8,
    beta: float = 1.0,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample margin term with positives and negatives weighted to equal totals.

    ``sum_j w_j R_s(y_j f_j)`` with ``w_j = m / (2 |C+|)`` on positives and
    ``m / (2 |C-|)`` on negatives (a side that is empty adds nothing), so the weights still
    sum to about ``m``. With the plain term, a sample's many negatives outvote its few
    positives: on features that do not yet separate a class, the term is least at a score
    below ``-1`` for every image, which puts the positives on the ramp's flat part.
    Elementwise, ``O(N m)``; the gradient (Eq. 7, 8 with the weights) is formed with the
    value, as for :func:`ranking_loss`.

    Args:
        logits: ``(N, m)`` scores.
        positive: ``(N, m)`` bool mask.
        known: optional ``(N, m)`` bool mask of the known entries; the sum, ``m``, ``C+``
            and ``C-`` are over those only (unknown entries: no term, zero gradient).

    Returns:
        ``(N,)``, differentiable in ``logits``.
    """
    return _BalancedMarginFunction.apply(logits, positive.bool(), s, beta, known)


def violation_penalty(
    u: torch.Tensor, s: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Penalty ``P(u) = H_1(1 - u) - beta H_s(1 - u)`` of violations ``u``, and its slope.

    Args:
        u: violation amounts (``1 - f_j + f_k`` for a pair, ``1 - y f`` for a margin).

    Returns:
        ``(P(u), dP/du, [u > 0])``: the slope is 1 on ``0 < u < 1 - s``, ``1 - beta`` for
        ``u >= 1 - s`` and 0 for ``u <= 0``; the last is the 0/1 indicator of violation.
    """
    cap = 1.0 - s
    capped = torch.clamp(u, 0.0, cap)
    violated = torch.sign(capped)
    linear = violated * torch.sign(cap - capped)  # 1 where 0 < u < cap
    if beta == 1.0:
        return capped, linear, violated
    value = capped + (1.0 - beta) * torch.relu(u - cap)
    return value, linear + (1.0 - beta) * (violated - linear), violated


def _add_margin_term(
    f: torch.Tensor,
    positive: torch.Tensor,
    per_sample: torch.Tensor,
    grad: torch.Tensor,
    s: float,
    beta: float,
    kappa: float | torch.Tensor,
    known: torch.Tensor | None = None,
) -> None:
    """Add ``sum_j kappa_j P(1 - y_j f_j)`` and its gradient in place (``y = 2 positive - 1``;
    ``kappa`` a number, or ``(N, m)`` weights), over the ``known`` entries if given."""
    violation = torch.addcmul(1.0 + f, positive, f, value=-2.0)  # 1 - y f
    value, slope, _ = violation_penalty(violation, s, beta)
    # d P(1 - y f) / d f = -y slope = slope - 2 positive slope
    slope = torch.addcmul(slope, positive, slope, value=-2.0)
    if known is not None:  # replaced, not multiplied: all-known stays bit-equal
        value, slope = torch.where(known, value, 0.0), torch.where(known, slope, 0.0)
    if isinstance(kappa, torch.Tensor):
        per_sample.add_((kappa * value).sum(dim=1))
        grad.addcmul_(kappa, slope)
    else:
        per_sample.add_(value.sum(dim=1), alpha=kappa)
        grad.add_(slope, alpha=kappa)


def _slot_weights(
    rank: RankMode | torch.Tensor,
    violators: torch.Tensor,
    num_negative: torch.Tensor,
    num_labels: int,
    rounding: RankRounding,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Rank weights ``L(r)`` of positive labels from their violator counts; 0 where ``v = 0``.

    ``rank`` may be a tensor of given ranks, of the shape of ``violators``.
    """
    device, dtype = violators.device, violators.dtype
    if isinstance(rank, torch.Tensor):
        given = rank.clamp(0, num_labels).to(torch.int64) * violators.sign().to(torch.int64)
        return rank_weight_table(num_labels, "exact", rounding, device, dtype).take(given)
    if rank == "exact":
        table = rank_weight_table(num_labels, "exact", rounding, device, dtype)
        return table.take(violators.to(torch.int64))
    draws = sample_draws(violators, num_negative, generator)
    return rank_weight_table(num_labels, "sampled", rounding, device, dtype).take(draws)


def _pairs_kernel(
    f: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    num_negative: torch.Tensor,
    terms: RankingTerms,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranking term and gradient with one row of violations per positive label.

    Positive ``(i, j)`` gets the row ``u = f_i - (f_ij - 1)`` of its sample's scores, with
    the sample's positives pushed far below 0 so that only negatives count. Rows are
    processed in chunks of ``max(4 N, 256)``, so extra memory stays ``O(N m)``.

    Args:
        f: ``(N, m)`` scores (float32 or float64).
        positive: ``(N, m)`` float 0/1 indicator of the (known) positives.
        negative: ``(N, m)`` float 0/1 indicator of the (known) negatives: ``1 - positive``
            when every label is known; an entry that is neither takes no part.
        num_negative: ``(N,)`` negatives per sample.

    Returns:
        ``(per_sample (N,), grad (N, m))`` with ``grad[i] = d per_sample[i] / d f[i]``.
    """
    n_rows, m = f.shape
    flat_positives = positive.reshape(-1).nonzero().squeeze(1)
    # Non-negatives pushed far below every threshold never violate: only negatives count.
    negatives_only = torch.add(f, 1.0 - negative, alpha=-_EXCLUDED[f.dtype])
    per_sample, grad = f.new_zeros(n_rows), f.new_zeros(n_rows, m)
    chunk = max(_ROWS_PER_SAMPLE * n_rows, _MIN_CHUNK_ROWS)  # memory O(N m), not O(P m)
    for start in range(0, max(flat_positives.shape[0], 1), chunk):
        flat = (
            flat_positives
            if start == 0 and chunk >= len(flat_positives)
            else (flat_positives[start : start + chunk])
        )
        rows = torch.div(flat, m, rounding_mode="floor")
        thresholds = f.reshape(-1).take(flat) - 1.0
        u = negatives_only.index_select(0, rows).sub_(thresholds[:, None])
        penalty, slope, violated = violation_penalty(u, terms.s, terms.beta)
        rank = terms.rank
        weights = _slot_weights(
            rank.reshape(-1).take(flat) if isinstance(rank, torch.Tensor) else rank,
            violated.sum(dim=1),
            num_negative.index_select(0, rows),
            m,
            terms.rounding,
            terms.generator,
        )
        per_sample.index_add_(0, rows, penalty.sum(dim=1) * weights)
        weighted_slope = slope * weights[:, None]
        grad.index_add_(0, rows, weighted_slope)
        grad.view(-1).index_add_(0, flat, weighted_slope.sum(dim=1), alpha=-1.0)
    return per_sample, grad


def _dense_kernel(
    f: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    num_negative: torch.Tensor,
    terms: RankingTerms,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranking term and gradient over blocks of ``(N, c, m)`` pairs, without host syncs.

    Every label ``j`` of a block is treated as a candidate positive and its row of
    violations against all ``m`` scores is formed; non-positive rows get weight 0. Blocks
    hold at most about 4 M pairs, so memory is ``O(N m c)`` with ``c = m`` for the usual
    label counts. It never asks the device how many positives there are, which keeps the
    GPU busy: the choice on CUDA for up to 64 M pairs in all.

    Args and returns: as :func:`_pairs_kernel`.
    """
    n_rows, m = f.shape
    negatives = num_negative.unsqueeze(1)
    block = max(1, min(m, _DENSE_BLOCK_PAIRS // max(n_rows * m, 1)))
    per_sample, grad = f.new_zeros(n_rows), f.new_zeros(n_rows, m)
    for start in range(0, m, block):
        columns = slice(start, min(start + block, m))
        u = f[:, None, :] - (f[:, columns] - 1.0)[:, :, None]  # (N, c, m)
        penalty, slope, violated = violation_penalty(u, terms.s, terms.beta)
        penalty, slope = penalty * negative[:, None, :], slope * negative[:, None, :]
        violators = (violated * negative[:, None, :]).sum(dim=2)
        rank = terms.rank
        block_rank = rank[:, columns] if isinstance(rank, torch.Tensor) else rank
        weights = (
            _slot_weights(block_rank, violators, negatives, m, terms.rounding, terms.generator)
            * positive[:, columns]
        )
        per_sample += (penalty.sum(dim=2) * weights).sum(dim=1)
        weighted_slope = slope * weights[:, :, None]
        grad += weighted_slope.sum(dim=1)
        grad[:, columns] -= weighted_slope.sum(dim=2)
    return per_sample, grad


def _sorted_kernel(
    f: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    num_negative: torch.Tensor,
    terms: RankingTerms,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and gradient from sorted positive thresholds and prefix sums.

    Per sample, the ``K`` positive thresholds ``t_j = f_j - 1`` are sorted (padded with a
    huge value). For each score ``f_k``, ``below = #{j: t_j < f_k}`` (pairs with ``u > 0``)
    and ``above = #{j: t_j <= f_k - (1 - s)}`` (pairs past the cap). With prefix sums
    ``W`` of the weights ``w_j = L(r_j)`` and ``WT`` of ``w_j t_j``, the pairs of ``k``
    sum to ``f_k (W[b] - beta W[a]) - (WT[b] - beta WT[a]) + beta (1 - s) W[a]``, and
    ``v_j`` is the number of negatives with ``below > j`` (a histogram).

    Args and returns: as :func:`_pairs_kernel`.
    """
    n_rows, m = f.shape
    s, beta, rank = terms.s, terms.beta, terms.rank
    num_negative = num_negative.unsqueeze(1)
    k = max(int(positive.sum(dim=1).max()), 1)
    padding = _EXCLUDED[f.dtype]  # larger than any score: never violated
    not_positive = 1.0 - positive
    scores, slot_index = torch.topk(
        torch.add(f, not_positive, alpha=padding), k, dim=1, largest=False
    )
    thresholds = scores - 1.0
    below = torch.searchsorted(thresholds, f, right=False)
    if beta != 0.0:
        above = torch.searchsorted(thresholds, f - (1.0 - s), right=True)
        positions = torch.cat([below, above + (k + 1)], dim=1)
        counted = torch.cat([negative, negative], dim=1)
    else:
        positions, counted = below, negative
    blocks = positions.shape[1] // m
    histogram = f.new_zeros(n_rows, blocks * (k + 1)).scatter_add_(1, positions, counted)
    past = num_negative.unsqueeze(2) - histogram.view(n_rows, blocks, k + 1)[:, :, :k].cumsum(
        dim=2
    )  # (N, blocks, K): negatives past each slot
    violators = past[:, 0]
    weights = _slot_weights(
        rank.gather(1, slot_index) if isinstance(rank, torch.Tensor) else rank,
        violators,
        num_negative,
        m,
        terms.rounding,
        terms.generator,
    )

    prefix = torch.stack([weights, weights * thresholds], dim=1).cumsum(dim=2)
    prefix = torch.nn.functional.pad(prefix, (1, 0)).repeat(1, 1, blocks)
    gathered = prefix.gather(2, positions.unsqueeze(1).expand(-1, 2, -1))
    w_below, wt_below = gathered[:, 0, :m], gathered[:, 1, :m]
    if beta != 0.0:
        w_above, wt_above = gathered[:, 0, m:], gathered[:, 1, m:]
        slope = w_below - beta * w_above
        offset = (beta * (1.0 - s)) * w_above - wt_below + beta * wt_above
        slot_grad = weights * (violators - beta * past[:, 1])
    else:
        slope, offset = w_below, -wt_below
        slot_grad = weights * violators
    per_sample = (torch.addcmul(offset, f, slope) * negative).sum(dim=1)
    grad = (slope * negative).scatter_add_(1, slot_index, -slot_grad)
    return per_sample, grad


def choose_kernel(num_samples: int, num_labels: int, num_positive: int) -> str:
    """The fastest CPU kernel for a batch: ``"fused"`` unless positives are many per sample.

    The fused and pairs kernels do ``O((P + N) m)`` work, the sorted kernel
    ``O(N m log K)``; measured on CPU (``benchmarks/bench_losses.py``), the fused kernel wins
    up to 300 positives per sample (the pairs kernel, without numba, below 4).
    On a GPU, :func:`choose_cuda_kernel` decides.
    """
    if fused_kernel is not None:
        return "fused" if num_positive <= _FUSED_POSITIVES_PER_SAMPLE * num_samples else "sorted"
    if num_positive <= 4 * num_samples or num_samples * num_labels <= 4096:
        return "pairs"
    return "sorted"


def choose_cuda_kernel(num_samples: int, num_labels: int, device: torch.device) -> str:
    """The kernel for a batch on a GPU: ``"fused"`` (one Triton launch) up to
    ``MAX_LABELS`` labels where Triton runs on the device, else ``"dense"`` up to 64 M
    pairs and ``"sorted"`` beyond. Decided without host-device synchronisation."""
    if fused_triton.supports(device) and num_labels <= fused_triton.MAX_LABELS:
        return "fused"
    if not fused_triton.available():
        fused_triton.warn_unavailable()
    return "dense" if num_samples * num_labels**2 <= _DENSE_MAX_PAIRS else "sorted"


def _negatives(
    indicator: torch.Tensor, num_positive: torch.Tensor, known: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(negative (N, m), num_negative (N,))``: the 0/1 indicator of the (known) negatives
    and their count per row, for the (known) positives ``indicator``."""
    if known is None:
        return 1.0 - indicator, indicator.shape[1] - num_positive
    negative = torch.where(known, 1.0 - indicator, 0.0)
    return negative, negative.sum(dim=1)


def _loss_and_gradient(
    f: torch.Tensor,
    positive: torch.Tensor,
    terms: RankingTerms,
    kernel: Kernel,
    known: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(per_sample (N,), grad (N, m))`` of the ranking and margin terms for detached
    scores ``f``, by the kernel asked for (``"auto"``: by device and shape), over the
    ``known`` entries if a ``(N, m)`` bool mask is given."""
    if kernel == "auto" and f.is_cuda:
        kernel = choose_cuda_kernel(f.shape[0], f.shape[1], f.device)
    if kernel == "fused" and f.device.type != "cpu":
        # reads any dtype and layout of positives as they are: one launch, no casts
        return fused_triton_kernel(f, positive, terms, known=known)
    dtype = _compute_dtype(f)
    f = f if f.dtype == dtype else f.to(dtype)
    indicator = positive if positive.dtype == dtype else positive.to(dtype)
    if known is not None:  # the known positives
        indicator = torch.where(known, indicator, 0.0)
    num_positive = indicator.sum(dim=1)
    if kernel == "auto":  # a host sync: taken on CPU only, where it is free
        kernel = choose_kernel(f.shape[0], f.shape[1], int(num_positive.sum()))
    if kernel == "fused":
        if fused_kernel is None:
            raise ImportError("kernel='fused' needs numba: pip install numba")
        if known is None:
            return fused_kernel(f, indicator, terms, num_positive)
        return fused_kernel(f, indicator, terms, num_positive, known=known)
    compute = {"pairs": _pairs_kernel, "sorted": _sorted_kernel, "dense": _dense_kernel}
    negative, num_negative = _negatives(indicator, num_positive, known)
    per_sample, grad = compute[kernel](f, indicator, negative, num_negative, terms)
    if terms.kappa != 0.0:
        weight = terms.kappa
        if terms.balance_margin:
            weight = terms.kappa * balanced_margin_weights(indicator.bool(), f.dtype, known)
        _add_margin_term(f, indicator, per_sample, grad, terms.s, terms.beta, weight, known)
    return per_sample, grad


class _RankingLossFunction(torch.autograd.Function):
    """Per-sample ranking and margin terms; backward scales the stored gradient."""

    @staticmethod
    def forward(
        ctx,
        logits: torch.Tensor,
        positive: torch.Tensor,
        terms: RankingTerms,
        kernel: Kernel,
        known: torch.Tensor | None,
    ) -> torch.Tensor:
        per_sample, grad = _loss_and_gradient(logits.detach(), positive, terms, kernel, known)
        ctx.save_for_backward(grad)
        ctx.logits_dtype = logits.dtype
        return per_sample

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        return _scaled_gradient(ctx, grad_output), None, None, None, None


def ranking_loss(
    logits: torch.Tensor,
    positive: torch.Tensor,
    terms: RankingTerms | None = None,
    *,
    kernel: Kernel = "auto",
    known: torch.Tensor | None = None,
    **settings,
) -> torch.Tensor:
    """Per-sample ``sum_{j in C+} L(r_j) sum_{k in C-} P(u_jk) + kappa sum_j P(1 - y_j f_j)``.

    With ``P = H_1 - beta H_s`` of ``t = 1 - u``: ``beta = 1`` is RMLC's ramp, ``beta = 0``
    with ``kappa = 0`` is WARP's hinge (:meth:`RankingTerms.warp`).

    Args:
        logits: ``(N, m)`` scores, any floating dtype (float64 is computed in float64,
            others in float32).
        positive: ``(N, m)`` positive labels as a bool mask or a 0/1 tensor.
        terms: what to compute (:class:`~rmlc.losses.terms.RankingTerms`: ``s``, ``beta``,
            ``kappa``, ``rank``, ``rounding``, ``generator``); or give those as keywords
            (``ranking_loss(logits, positive, kappa=0.0, rank="exact")``), not both.
        kernel: ``"auto"``, ``"fused"`` (numba on CPU, Triton on a GPU), ``"pairs"``,
            ``"sorted"`` or ``"dense"`` (see the module docstring).
        known: optional ``(N, m)`` bool mask of the entries whose label is known (partial
            labels; None: all known). Pairs join a known positive to a known negative,
            ranks count (or draw among) the known negatives, the margin term sums over
            known entries; unknown entries get a zero gradient (docs/losses.md).

    Returns:
        ``(N,)`` losses, differentiable in ``logits``.
    """
    if terms is None:
        terms = RankingTerms(**settings)
    elif settings:
        raise TypeError(f"give terms or its settings, not both (got {sorted(settings)})")
    check_choice(kernel, KERNELS, "kernel")
    return _RankingLossFunction.apply(logits, positive, terms, kernel, known)
