"""Fused CPU kernel of the ranking loss: one compiled pass per sample (numba).

The torch kernels of :mod:`rmlc.losses.functional` issue 30 to 50 tensor operations per
call. On CPU, at the usual batch shapes (96 images, 80 labels, a few positives each), every
operation costs a few microseconds of dispatch whatever its size, and these fixed costs are
most of the loss's time. This kernel computes the same per-sample loss and gradient in one
compiled loop over the samples (numba, no C compiler needed):

* the margin term ``kappa sum_j P(1 - y_j f_j)`` and its gradient, label by label;
* the ranking term, four positives ``j`` at a time (their thresholds ``f_j - 1`` held in
  registers): one pass counts, for each, the violators ``v_j`` (``u = f_k - f_j + 1 > 0``)
  and the negatives beyond the ramp's cap (``u >= 1 - s``), which give the rank weight
  ``L(r_j)`` and the positive's gradient; one more pass adds the negatives' slopes
  ``sum_j L(r_j) P'(u_jk)``.

The penalties need no pass of their own: ``P`` is linear in ``f_k`` wherever its slope is
constant, so ``sum_j L(r_j) sum_k P(u_jk)`` is ``sum_k f_k slopes_k`` plus a constant per
positive from its two counts. Work is still ``O((P + N) m)`` for ``P`` positives, in
``2 ceil(P / 4)`` passes over the scores for the ranking term (was ``2 P``: a count and a
penalty pass per positive), extra memory ``O(m)`` per thread. Sums are taken in float64
whatever the input dtype, and every comparison is the one of the definition
(``f_k > f_j - 1``, ``u >= 1 - s`` in float64), so ties at the breakpoints fall as in the
literal loop. Large batches are cut into row blocks that run on torch's threads at once
(the loop releases the GIL); small ones stay on the calling thread, where handing work
over would cost more than it saves.

Sampled ranks use one uniform number per positive (drawn by torch, so the ``generator``
argument keeps its meaning): the number of draws ``q`` until the first of ``v`` violators
among ``n`` negatives is found by inverting its exact distribution,
``P(q > t) = prod_{a < t} (n - v - a) / (n - a)``
(:func:`draws_by_inversion`). A sample with a non-finite score gets a NaN loss and
gradient row.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from rmlc.losses.ranks import rank_weight_table
from rmlc.losses.terms import RankingTerms

__all__ = ["PARALLEL_MIN_ENTRIES", "compiled", "draws_by_inversion", "fused_kernel", "row_blocks"]

_SAMPLED, _EXACT, _GIVEN = 0, 1, 2
_GROUP = 4  # positives whose thresholds one pass over the negatives compares against
# Reassociation lets the compiler vectorize the sums over labels; no assumption on NaN/inf.
_FAST_MATH = {"reassoc", "nsz", "contract"}


def compiled(**options: object) -> Callable[[Callable], Callable]:
    """``numba.njit`` that keeps the machine code on disk where it can (next to this file or
    in the user's cache), and compiles once per process where nothing is writable (a
    read-only install and home), instead of failing at import."""

    def decorate(function: Callable) -> Callable:
        try:
            return numba.njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:  # numba found no writable cache location
            return numba.njit(nogil=True, **options)(function)

    return decorate


@compiled()
def _draws_by_inversion(violators: int, negatives: int, uniform: float) -> int:
    """Draws ``q`` until the first violator: the smallest ``t`` with ``P(q > t) < 1 - U``.

    Scanning ``t`` upwards takes about ``n / (v + 1)`` steps; a binary search over ``t``,
    with ``P(q > t) = prod_{i < v} (n - t - i) / (n - i)``, about ``v log2 n``. The shorter
    is taken (the rule of the Triton kernel), so few violators among 20,000 negatives cost
    a few hundred steps, not ten thousand.
    """
    target, free = 1.0 - uniform, negatives - violators
    if violators * np.log2(negatives + 1.0) < (negatives + 1.0) / (violators + 1.0):
        low, high = 1, free + 1  # P(q > n - v + 1) = 0
        while low < high:
            middle = (low + high) // 2
            survival = 1.0
            for i in range(violators):
                survival *= (negatives - middle - i) / (negatives - i)
            if survival < target:
                high = middle
            else:
                low = middle + 1
        return low
    survival, q = 1.0, 1
    while True:
        survival *= (free - (q - 1)) / (negatives - (q - 1))
        if survival < target:
            return q
        q += 1


@compiled()
def _draws_by_inversion_array(
    violators: np.ndarray, negatives: np.ndarray, uniforms: np.ndarray, out: np.ndarray
) -> None:
    for index in range(violators.shape[0]):
        v = violators[index]
        out[index] = _draws_by_inversion(v, negatives[index], uniforms[index]) if v > 0 else 0


def draws_by_inversion(
    violators: np.ndarray, num_negative: np.ndarray, uniforms: np.ndarray
) -> np.ndarray:
    """Draws ``q`` until the first violator, from one uniform number each (the fused sampler).

    Args:
        violators: ``(P,)`` violator counts ``v``.
        num_negative: ``(P,)`` numbers of negatives ``n >= v``.
        uniforms: ``(P,)`` numbers in ``[0, 1)``.

    Returns:
        ``(P,)`` int64 draws in ``[1, n - v + 1]``, 0 where ``v = 0``; for uniform inputs
        their distribution is that of scanning the negatives in a random order.
    """
    violators = np.ascontiguousarray(violators, dtype=np.int64)
    out = np.empty_like(violators)
    _draws_by_inversion_array(
        violators,
        np.ascontiguousarray(num_negative, dtype=np.int64),
        np.ascontiguousarray(uniforms, dtype=np.float64),
        out,
    )
    return out


@compiled(fastmath=_FAST_MATH)
def _fused_loop(
    f: np.ndarray,
    positive: np.ndarray,
    known: np.ndarray,
    masked: bool,
    mode: int,
    uniforms: np.ndarray,
    given: np.ndarray,
    table: np.ndarray,
    s: float,
    beta: float,
    kappa: float,
    balance: bool,
    per_sample: np.ndarray,
    grad: np.ndarray,
) -> None:
    """Per-sample loss into ``per_sample`` ``(N,)`` and gradient into ``grad`` ``(N, m)``.

    ``f``, ``positive``: ``(N, m)`` (``positive`` nonzero at known positives only);
    ``known``: ``(N, m)`` bool, read only when ``masked`` (an unknown entry is neither a
    positive nor a negative, and has no margin term); ``uniforms``: one per positive in
    row-major order (sampled mode); ``given``: ``(N, m)`` ranks (given mode); ``table``:
    ``L`` indexed by the number of draws (sampled) or by the rank (exact, given).
    ``balance``: the margin term weighs positives ``m / (2 |C+|)`` and negatives
    ``m / (2 |C-|)`` (else 1), ``m``, ``C+`` and ``C-`` counting known entries.
    """
    n_rows, m = f.shape
    cap, soft = 1.0 - s, 1.0 - beta
    scores = np.empty(m, np.float64)  # the negatives' scores, -inf at positives
    gradient = np.empty(m, np.float64)  # of the margin term, and of the positives' ranks
    slopes = np.empty(m, np.float64)  # sum_j L(r_j) P'(u_jk) of each negative k
    members = np.empty(m, np.int64)  # the positives' labels
    thresholds, weights = np.empty(_GROUP, np.float64), np.empty(_GROUP, np.float64)
    slot = 0  # index of the next positive's uniform number
    for i in range(n_rows):
        count, unknown = 0, 0
        for k in range(m):
            slopes[k] = 0.0
            if positive[i, k] != 0:
                scores[k] = -np.inf
                members[count] = k
                count += 1
            elif masked and not known[i, k]:
                scores[k] = -np.inf  # never a violator
                unknown += 1
            else:
                scores[k] = np.float64(f[i, k])
        negatives = m - count - unknown
        total, finite = _margin_row(
            f[i],
            positive[i],
            known[i],
            masked,
            count,
            negatives,
            kappa,
            cap,
            soft,
            balance,
            gradient,
        )
        for start in range(0, count, _GROUP):  # ranking term, four positives per pass
            thresholds[:] = np.inf  # an unused place matches no negative
            weights[:] = 0.0
            for q in range(min(_GROUP, count - start)):
                thresholds[q] = np.float64(f[i, members[start + q]]) - 1.0
            above, beyond = _count_violators(scores, thresholds, cap)
            for q in range(min(_GROUP, count - start)):
                j, violators = members[start + q], int(above[q])
                if mode == _SAMPLED:
                    uniform = uniforms[slot]
                    slot += 1
                    if violators == 0:
                        continue
                    weight = table[_draws_by_inversion(violators, negatives, uniform)]
                elif violators == 0:
                    continue
                elif mode == _EXACT:
                    weight = table[violators]
                else:
                    weight = table[min(max(given[i, j], 0), m)]
                linear = above[q] - beyond[q]  # negatives on the ramp's slope, 0 < u < cap
                theta = thresholds[q]
                # the penalties' constant parts; their scores' part is the dot product below
                total += weight * (beyond[q] * (cap - soft * (theta + cap)) - linear * theta)
                gradient[j] -= weight * (linear + soft * beyond[q])
                weights[q] = weight
            if weights.any():  # no pass for four positives without violators
                _add_slopes(scores, thresholds, weights, cap, 1.0 - soft, slopes)
        for k in range(m):  # sum_j L(r_j) sum_k P(u_jk): the scores' part, sum_k f_k slopes_k
            total += np.float64(f[i, k]) * slopes[k]
        if not finite:
            per_sample[i] = np.nan
            grad[i, :] = np.nan
            continue
        per_sample[i] = total
        for k in range(m):
            grad[i, k] = gradient[k] + slopes[k]


@compiled(fastmath=_FAST_MATH)
def _margin_row(
    f: np.ndarray,
    positive: np.ndarray,
    known: np.ndarray,
    masked: bool,
    positives: int,
    negatives: int,
    kappa: float,
    cap: float,
    soft: float,
    balance: bool,
    gradient: np.ndarray,
) -> tuple[float, bool]:
    """The margin term ``kappa sum_j P(1 - y_j f_j)`` of one row ``f`` ``(m,)`` over its
    known entries (all unless ``masked``), and whether every score is finite; the term's
    gradient is written into ``gradient`` ``(m,)`` (0 at unknown entries)."""
    m = f.shape[0]
    size = positives + negatives  # the known labels: m unless masked
    positive_weight, negative_weight = kappa, kappa
    if balance:
        positive_weight = kappa * size / (2.0 * max(positives, 1))
        negative_weight = kappa * size / (2.0 * max(negatives, 1))
    total, finite = 0.0, True
    for k in range(m):
        finite &= np.isfinite(f[k])
        if masked and not known[k]:
            gradient[k] = 0.0
            continue
        is_positive = positive[k] != 0
        sign = 1.0 if is_positive else -1.0
        weight = positive_weight if is_positive else negative_weight
        u = 1.0 - sign * np.float64(f[k])
        total += weight * (min(max(u, 0.0), cap) + soft * max(u - cap, 0.0))
        slope = np.float64((u > 0.0) & (u < cap)) + soft * np.float64(u >= cap)
        gradient[k] = -weight * sign * slope
    return total, finite


@compiled(fastmath=_FAST_MATH)
def _count_violators(
    scores: np.ndarray, thresholds: np.ndarray, cap: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """For each of four positives ``q``, with ``u = score - thresholds[q]``: the negatives
    with ``u > 0`` (the violators) and those with ``u >= cap`` (beyond the ramp's cap), as
    two tuples of four float64 counts: one pass over ``scores`` ``(m,)``."""
    t0, t1, t2, t3 = thresholds[0], thresholds[1], thresholds[2], thresholds[3]
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
    for k in range(scores.shape[0]):
        g = scores[k]
        a0 += 1.0 if g > t0 else 0.0
        a1 += 1.0 if g > t1 else 0.0
        a2 += 1.0 if g > t2 else 0.0
        a3 += 1.0 if g > t3 else 0.0
        b0 += 1.0 if g - t0 >= cap else 0.0
        b1 += 1.0 if g - t1 >= cap else 0.0
        b2 += 1.0 if g - t2 >= cap else 0.0
        b3 += 1.0 if g - t3 >= cap else 0.0
    return (a0, a1, a2, a3), (b0, b1, b2, b3)


@compiled(fastmath=_FAST_MATH)
def _add_slopes(
    scores: np.ndarray,
    thresholds: np.ndarray,
    weights: np.ndarray,
    cap: float,
    hard: float,
    slopes: np.ndarray,
) -> None:
    """``slopes[k] += sum_q weights[q] P'(scores[k] - thresholds[q])`` for four positives,
    with ``P' = 1`` on ``0 < u < cap`` and ``1 - hard`` beyond: one pass over ``(m,)``."""
    t0, t1, t2, t3 = thresholds[0], thresholds[1], thresholds[2], thresholds[3]
    w0, w1, w2, w3 = weights[0], weights[1], weights[2], weights[3]
    h0, h1, h2, h3 = hard * w0, hard * w1, hard * w2, hard * w3
    for k in range(scores.shape[0]):
        g = scores[k]
        up = (w0 if g > t0 else 0.0) + (w1 if g > t1 else 0.0)
        up += (w2 if g > t2 else 0.0) + (w3 if g > t3 else 0.0)
        down = (h0 if g - t0 >= cap else 0.0) + (h1 if g - t1 >= cap else 0.0)
        down += (h2 if g - t2 >= cap else 0.0) + (h3 if g - t3 >= cap else 0.0)
        slopes[k] += up - down


def fused_kernel(
    f: torch.Tensor,
    positive: torch.Tensor,
    terms: RankingTerms,
    num_positive: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranking and margin terms with their gradient, in one compiled pass (CPU only).

    Rows are split among torch's threads (:func:`row_blocks`) where the batch is large
    enough; each row's result does not depend on the split.

    Args:
        f: ``(N, m)`` float32 or float64 scores on CPU.
        positive: ``(N, m)`` 0/1 indicator of ``f``'s dtype, 0 at unknown entries.
        terms: what to compute (the margin term included here, unlike the torch kernels).
        num_positive: ``(N,)`` positives per row, if the caller has counted them.
        known: optional ``(N, m)`` bool mask of the known entries (None: all known).

    Returns:
        ``(per_sample (N,), grad (N, m))`` with ``grad[i] = d per_sample[i] / d f[i]``.
    """
    if f.device.type != "cpu":
        raise ValueError(f"kernel='fused' runs on CPU; the logits are on {f.device}")
    n_rows, m = f.shape
    f, positive = f.contiguous(), positive.contiguous()
    masked = known is not None
    known_array = known.contiguous().numpy() if masked else np.empty((n_rows, 0), np.bool_)
    uniforms = np.empty(0, np.float64)
    given = np.empty((n_rows, 0), np.int64)
    first_slots = np.zeros(n_rows + 1, np.int64)  # row i's uniforms start at first_slots[i]
    rank, rounding = terms.rank, terms.rounding
    if isinstance(rank, torch.Tensor):
        mode, given = _GIVEN, rank.to(torch.int64).contiguous().numpy()
        table = rank_weight_table(m, "exact", rounding, f.device)
    elif rank == "exact":
        mode = _EXACT
        table = rank_weight_table(m, "exact", rounding, f.device)
    else:
        counts = positive.sum(dim=1) if num_positive is None else num_positive
        np.cumsum(counts.to(torch.int64).numpy(), out=first_slots[1:])
        uniforms = torch.rand(
            int(first_slots[-1]), dtype=torch.float64, generator=terms.generator
        ).numpy()
        mode = _SAMPLED
        table = rank_weight_table(m, "sampled", rounding, f.device)
    per_sample, grad = f.new_empty(n_rows), torch.empty_like(f)
    arrays = (f.numpy(), positive.numpy(), per_sample.numpy(), grad.numpy(), table.numpy())
    f_array, positive_array, loss_array, grad_array, table_array = arrays
    settings = (float(terms.s), float(terms.beta), float(terms.kappa), bool(terms.balance_margin))

    def run(rows: slice) -> None:
        slots = slice(first_slots[rows.start], first_slots[rows.stop])
        _fused_loop(
            f_array[rows],
            positive_array[rows],
            known_array[rows],
            masked,
            mode,
            uniforms[slots],
            given[rows],
            table_array,
            *settings,
            loss_array[rows],
            grad_array[rows],
        )

    blocks = row_blocks(n_rows, m)
    pending = [_thread_pool().submit(run, rows) for rows in blocks[1:]]
    run(blocks[0])  # the calling thread takes the first block
    for future in pending:
        future.result()
    return per_sample, grad


# Below this many entries per block, handing a block to another thread costs more than the
# block's share of the work (about 50 us of dispatch against about 7 ns per entry).
PARALLEL_MIN_ENTRIES = 1 << 16
_pools: dict[int, ThreadPoolExecutor] = {}


def row_blocks(n_rows: int, m: int) -> list[slice]:
    """Contiguous row blocks, one per thread: ``torch.get_num_threads()`` of them at most,
    each of at least :data:`PARALLEL_MIN_ENTRIES` entries (one block for small batches)."""
    count = min(torch.get_num_threads(), n_rows, n_rows * m // PARALLEL_MIN_ENTRIES)
    bounds = np.linspace(0, n_rows, max(count, 1) + 1).round().astype(np.int64)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds.tolist())]


def _thread_pool() -> ThreadPoolExecutor:
    """This process's pool (a forked child, e.g. a data-loading worker, makes its own: the
    parent's threads do not exist there)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ThreadPoolExecutor(thread_name_prefix="rmlc-fused")
    return _pools[pid]
