"""The fused CPU kernel: its sampler, non-finite scores, kernel choice and the torch fallback.

Its losses and gradients are checked against the literal loop with the other kernels
(test_ranking_reference.py, test_losses.py, test_properties.py); here is what is its own.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import RMLCLoss, WARPLoss, fused
from rmlc.losses import functional as F
from rmlc.losses.fused import draws_by_inversion, fused_kernel
from rmlc.losses.terms import RankingTerms


def exact_draw_distribution(violators: int, negatives: int) -> np.ndarray:
    """P(q = t) for t = 0..n of the first violator's position in a random order, by counting:
    q = t when the first t - 1 draws are non-violators and the t-th a violator."""
    free = negatives - violators
    probabilities = np.zeros(negatives + 1)
    survival = 1.0  # P(the first t - 1 draws are all non-violators)
    for t in range(1, free + 2):
        probabilities[t] = survival * violators / (negatives - (t - 1))
        survival *= (free - (t - 1)) / (negatives - (t - 1))
    return probabilities


@pytest.mark.parametrize(("violators", "negatives"), [(1, 1), (1, 9), (3, 10), (7, 77), (40, 77)])
def test_inversion_draws_follow_the_exact_distribution(violators: int, negatives: int) -> None:
    count = 200_000
    uniforms = np.random.default_rng(violators * 100 + negatives).random(count)
    draws = draws_by_inversion(np.full(count, violators), np.full(count, negatives), uniforms)
    expected = exact_draw_distribution(violators, negatives)
    assert expected.sum() == pytest.approx(1.0)
    observed = np.bincount(draws, minlength=negatives + 1) / count
    assert observed[0] == 0 and observed[negatives - violators + 2 :].sum() == 0
    tolerance = 5 * np.sqrt(expected * (1 - expected) / count) + 1e-12
    assert np.all(np.abs(observed - expected) <= tolerance)
    mean = draws.mean()
    assert abs(mean - (negatives + 1) / (violators + 1)) <= 5 * draws.std() / np.sqrt(count)


def test_inversion_draws_at_the_ends_of_the_unit_interval() -> None:
    violators, negatives = np.array([3, 3, 0, 5]), np.array([10, 10, 10, 5])
    uniforms = np.array([0.0, np.nextafter(1.0, 0.0), 0.5, 0.7])
    # U = 0: the first draw; U -> 1: after every non-violator; no violator: 0; all violate: 1.
    assert draws_by_inversion(violators, negatives, uniforms).tolist() == [1, 8, 0, 1]


def literal_scan_draws(violators: int, negatives: int, uniform: float) -> int:
    """The smallest ``t`` with ``P(q > t) < 1 - U``, scanning ``t`` upwards (METHOD.md)."""
    survival, free, t = 1.0, negatives - violators, 1
    while True:
        survival *= (free - (t - 1)) / (negatives - (t - 1))
        if survival < 1.0 - uniform:
            return t
        t += 1


def test_binary_search_draws_equal_the_scan() -> None:
    """Few violators among many negatives take the binary search over ``t``: the same draws
    as the scan (which costs about ``n / (v + 1)`` steps: 10,000 at v = 1, n = 20,000)."""
    rng = np.random.default_rng(7)
    violators = np.array([1, 1, 2, 3, 5, 8, 13, 40, 300] * 40)
    negatives = rng.integers(violators + 1, 20_000, endpoint=True)
    uniforms = rng.random(violators.shape[0])
    uniforms[:9] = [0.0, np.nextafter(1.0, 0.0), 0.5, 0.999999, 1e-12, 0.25, 0.75, 0.9, 0.1]
    cases = zip(violators.tolist(), negatives.tolist(), uniforms.tolist(), strict=True)
    expected = [literal_scan_draws(*case) for case in cases]
    assert draws_by_inversion(violators, negatives, uniforms).tolist() == expected
    assert max(expected) > 5_000  # long scans were needed


@pytest.mark.parametrize("rank", ["sampled", "exact", "given"])
def test_row_blocks_on_threads_give_the_single_thread_result(
    rank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large batches are split into row blocks run on threads: each row's loss and gradient,
    and the sampled ranks (uniform numbers in row order), are those of one block."""
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(23, 400, generator=generator) * 2
    targets = (torch.rand(23, 400, generator=generator) < 0.03).float()
    targets[5] = 0.0  # a row without positives takes no uniform numbers
    ranks = torch.randint(0, 401, (23, 400), generator=generator)
    terms = {"given": ranks, "exact": "exact", "sampled": "sampled"}[rank]

    def run(threads: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.set_num_threads(threads)
        state = torch.Generator().manual_seed(11)
        return fused_kernel(logits, targets, RankingTerms(-0.8, 1.0, 5.0, terms, "floor", state))

    threads = torch.get_num_threads()
    try:
        single = run(1)
        monkeypatch.setattr(fused, "PARALLEL_MIN_ENTRIES", 1)
        assert len(fused.row_blocks(23, 400)) == 1  # one thread: one block
        torch.set_num_threads(4)
        assert [(b.start, b.stop) for b in fused.row_blocks(23, 400)] == [
            (0, 6),
            (6, 12),
            (12, 17),
            (17, 23),
        ]
        blocked = run(4)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(blocked[0], single[0]) and torch.equal(blocked[1], single[1])


@pytest.mark.parametrize("s", [-0.5, 0.0])
def test_positives_taken_four_at_a_time_match_the_literal_loop(s: float) -> None:
    """Rows of 0 to 9 positives (a part of a group of four, one and two whole groups, and
    more) on a half-integer grid, where scores tie exactly at both breakpoints of the ramp."""
    rng = np.random.default_rng(11)
    m = 30
    logits = np.round(rng.normal(0.0, 2.0, (10, m)) * 2) / 2
    targets = np.zeros((10, m))
    for count in range(10):
        targets[count, rng.choice(m, count, replace=False)] = 1.0
    margins = [
        logits[i, j] - logits[i, k]
        for i, j, k in zip(
            *np.nonzero(targets[:, :, None] * (1 - targets[:, None, :])), strict=True
        )
    ]
    assert 1.0 in margins and s in margins  # ties at u = 0 and at u = cap
    per_sample, _, ranks = reference.literal_loss(
        logits.tolist(), targets.tolist(), s=s, kappa=1.0, rank="exact", reduction="none"
    )
    leaf = torch.tensor(logits, requires_grad=True)
    loss_fn = RMLCLoss.paper(s=s, kappa=1.0, rank="exact", reduction="none", kernel="fused")
    loss = loss_fn(leaf, torch.tensor(targets))
    np.testing.assert_allclose(loss.detach().numpy(), per_sample, rtol=1e-12, atol=1e-12)
    loss.sum().backward()
    expected = reference.literal_subgradient(
        logits.tolist(), targets.tolist(), ranks, s=s, kappa=1.0, reduction="sum"
    )
    np.testing.assert_allclose(leaf.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_small_batches_stay_on_the_calling_thread() -> None:
    assert fused.row_blocks(96, 80) == [slice(0, 96)]  # the usual batch: no dispatch
    assert len(fused.row_blocks(96, 20_000)) == min(torch.get_num_threads(), 29)


def test_non_finite_scores_give_nan_for_their_sample_only() -> None:
    logits = torch.randn(4, 6, dtype=torch.float64)
    targets = torch.zeros(4, 6)
    targets[:, 0] = 1
    logits[1, 3], logits[2, 0] = float("nan"), float("inf")
    leaf = logits.clone().requires_grad_(True)
    loss = RMLCLoss.paper(rank="exact", reduction="none", kernel="fused")(leaf, targets)
    loss.sum().backward()
    assert torch.isnan(loss[1:3]).all() and torch.isnan(leaf.grad[1:3]).all()
    clean = RMLCLoss.paper(rank="exact", reduction="none", kernel="pairs")(
        logits[[0, 3]], targets[[0, 3]]
    )
    torch.testing.assert_close(loss[[0, 3]], clean)


def test_auto_takes_fused_for_few_positives_and_sorted_for_many() -> None:
    assert F.choose_kernel(96, 80, 3 * 96) == "fused"
    assert F.choose_kernel(256, 1000, 300 * 256) == "fused"
    assert F.choose_kernel(256, 1000, 301 * 256) == "sorted"


def test_without_numba_auto_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 30, dtype=torch.float64, generator=generator)
    targets = (torch.rand(16, 30, generator=generator) < 0.2).double()
    with_numba = RMLCLoss.paper(rank="exact", reduction="none")(logits, targets)
    monkeypatch.setattr(F, "fused_kernel", None)
    assert F.choose_kernel(16, 30, 50) == "pairs"
    torch.testing.assert_close(
        RMLCLoss.paper(rank="exact", reduction="none")(logits, targets), with_numba
    )
    with pytest.raises(ImportError, match="needs numba"):
        WARPLoss(kernel="fused")(logits, targets)


class NoCacheLocation:
    """A numba cache locator that never applies: as with a read-only install and home."""

    @classmethod
    def from_function(cls, function: object, source_path: str) -> None:
        return None


def test_kernel_compiles_without_a_writable_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import numba

    from rmlc.losses.fused import compiled

    monkeypatch.setattr(numba.config, "CACHE_LOCATOR_CLASSES", f"{__name__}.NoCacheLocation")

    def twice(x: float) -> float:
        return 2.0 * x

    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(twice)
    assert compiled()(twice)(3.0) == 6.0
