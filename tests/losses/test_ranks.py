"""Rank estimation: harmonic weights, the exact sampler of draws, counts and tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import ranks as R


def test_rank_weights_are_harmonic_numbers() -> None:
    r = torch.arange(0, 1200)
    expected = [reference.harmonic(int(x)) for x in r]
    np.testing.assert_allclose(R.rank_weights(r).numpy(), expected, rtol=1e-13, atol=1e-15)
    assert R.rank_weights(torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("rounding", ["floor", "round"])
def test_ranks_from_draws(rounding: str) -> None:
    draws = torch.arange(0, 81)
    got = R.ranks_from_draws(draws, 81, rounding)
    assert got[0] == 0
    for q in range(1, 81):
        assert got[q] == reference.rank_from_draws(q, 81, rounding)


@pytest.mark.parametrize("mode", ["exact", "sampled"])
@pytest.mark.parametrize("rounding", ["floor", "round"])
def test_rank_weight_table(mode: str, rounding: str) -> None:
    table = R.rank_weight_table(50, mode, rounding, torch.device("cpu"))
    for index in range(51):
        r = (
            index
            if mode == "exact"
            else (reference.rank_from_draws(index, 50, rounding) if index else 0)
        )
        assert table[index].item() == pytest.approx(reference.harmonic(r), rel=1e-12)


def exact_draw_pmf(n: int, v: int) -> np.ndarray:
    """P(q = t), t = 1..n-v+1: first violator at draw t, drawing without replacement."""
    pmf, survive = [], 1.0
    for t in range(1, n - v + 2):
        remaining = n - (t - 1)
        pmf.append(survive * v / remaining)
        survive *= (remaining - v) / remaining
    return np.array(pmf)


@pytest.mark.parametrize(("n", "v"), [(1, 1), (10, 1), (10, 10), (79, 3), (79, 40), (999, 7)])
def test_sampled_draws_follow_the_exact_distribution(n: int, v: int) -> None:
    samples = 200_000
    generator = torch.Generator().manual_seed(n * 1000 + v)
    draws = R.sample_draws(
        torch.full((samples,), float(v), dtype=torch.float64),
        torch.full((samples,), float(n), dtype=torch.float64),
        generator,
    ).numpy()
    assert draws.min() >= 1 and draws.max() <= n - v + 1
    # Mean: E[q] = (n + 1) / (v + 1), within 5 standard errors.
    expected_mean = (n + 1) / (v + 1)
    assert abs(draws.mean() - expected_mean) < 5 * draws.std() / math.sqrt(samples) + 1e-12
    # Whole distribution: chi-square against the exact pmf (bins with >= 5 expected).
    pmf = exact_draw_pmf(n, v)
    observed = np.bincount(draws - 1, minlength=len(pmf))[: len(pmf)]
    expected = pmf * samples
    keep = expected >= 5
    chi2 = float((((observed - expected) ** 2) / expected)[keep].sum())
    dof = max(int(keep.sum()) - 1, 1)
    assert chi2 < dof + 6 * math.sqrt(2 * dof), (chi2, dof)


def test_no_violator_gives_no_draw() -> None:
    draws = R.sample_draws(torch.tensor([0.0, 0.0, 2.0]), torch.tensor([5.0, 0.0, 5.0]))
    assert draws[:2].tolist() == [0, 0] and 1 <= draws[2] <= 4


def test_keyed_draws_match_the_sampler_in_distribution() -> None:
    """draws_from_keys with uniform keys and sample_draws estimate the same law."""
    n_rows, m = 4000, 12
    f = torch.zeros(n_rows, m, dtype=torch.float64)
    f[:, 0] = 1.5  # the positive: threshold 0.5
    f[:, 1:5] = 1.0  # four violators (1 - 1.5 + 1 = 0.5 > 0)
    positive = torch.zeros(n_rows, m, dtype=torch.bool)
    positive[:, 0] = True
    keyed = R.draws_from_keys(f, positive, torch.rand(n_rows, m, m, dtype=torch.float64))[:, 0]
    sampled = R.sample_draws(torch.full((n_rows,), 4.0), torch.full((n_rows,), 11.0))
    expected_mean = 12 / 5
    for draws in (keyed.double(), sampled.double()):
        assert abs(draws.mean().item() - expected_mean) < 5 * draws.std().item() / n_rows**0.5


def test_violator_counts() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 30))
    positive = rng.random((5, 30)) < 0.3
    got = R.violator_counts(torch.tensor(logits), torch.tensor(positive))
    for i in range(5):
        for j in range(30):
            expected = (
                sum(
                    1
                    for k in range(30)
                    if not positive[i, k] and 1 - logits[i, j] + logits[i, k] > 0
                )
                if positive[i, j]
                else 0
            )
            assert got[i, j] == expected
