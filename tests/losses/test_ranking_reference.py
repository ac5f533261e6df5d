"""The vectorized RMLC and WARP losses against the literal loops of tests/reference.py."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import RMLCLoss, WARPLoss
from rmlc.losses import functional as F
from rmlc.losses import ranks as R

SIZES = [1, 2, 3, 4, 5, 7, 10, 16, 33, 80, 81, 200, 1000]


def random_case(seed: int) -> dict:
    """A random problem: sizes, score scales, ties, label densities, encodings, weights."""
    rng = np.random.default_rng(seed)
    m = int(rng.choice(SIZES, p=[0.08] * 9 + [0.07, 0.07, 0.06, 0.08]))
    n = int(rng.integers(1, 3 if m >= 200 else 7))
    tied = bool(rng.random() < 0.3)
    if tied:  # half-integer grid: exact ties between scores and exactly at the breakpoints
        logits = np.round(rng.normal(0.0, 2.0, (n, m)) * 2) / 2
        s = float(rng.choice([-0.5, 0.0]))
    else:
        logits = rng.normal(0.0, float(rng.choice([0.3, 1.0, 3.0])), (n, m))
        s = float(rng.uniform(-0.99, 0.0))
    density = float(rng.choice([0.02, 0.1, 0.3, 0.7]))
    positive = rng.random((n, m)) < density
    positive[0] = False  # a row with no positive
    if n > 1:
        positive[1] = True  # a row with only positives
    if n > 2:
        positive[2, rng.integers(m)] = True  # a row with at least one positive
    signed = bool(rng.random() < 0.5)
    targets = np.where(positive, 1.0, -1.0 if signed else 0.0)
    weight = None if rng.random() < 0.4 else rng.uniform(0.0, 2.0, n) * (rng.random(n) > 0.2)
    return {
        "logits": logits,
        "targets": targets,
        "weight": weight,
        "s": s,
        "kappa": float(rng.choice([0.0, 1.0, 5.0])),
        "reduction": str(rng.choice(["mean", "sum", "none"])),
        "warp": bool(rng.random() < 0.3),
    }


@pytest.mark.parametrize("kernel", ["fused", "pairs", "sorted", "dense"])
@pytest.mark.parametrize("seed", range(240))
def test_exact_mode_matches_literal_loop(seed: int, kernel: str) -> None:
    case = random_case(seed)
    logits = torch.tensor(case["logits"], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor(case["targets"])
    weight = None if case["weight"] is None else torch.tensor(case["weight"])
    reduction = case["reduction"]
    if case["warp"]:
        loss_fn = WARPLoss(rank="exact", reduction=reduction, kernel=kernel)
        params = {"hinge_only": True, "kappa": 0.0}
    else:
        loss_fn = RMLCLoss.paper(
            s=case["s"], kappa=case["kappa"], rank="exact", reduction=reduction, kernel=kernel
        )
        params = {"s": case["s"], "kappa": case["kappa"]}
    per_sample, reduced, ranks = reference.literal_loss(
        case["logits"].tolist(),
        case["targets"].tolist(),
        case["weight"],
        **params,
        reduction=reduction,
    )
    loss = loss_fn(logits, targets, weight)
    expected = per_sample if reduction == "none" else reduced
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-9, atol=1e-9)

    loss.sum().backward()
    grad = reference.literal_subgradient(
        case["logits"].tolist(),
        case["targets"].tolist(),
        ranks,
        case["weight"],
        **params,
        reduction="sum" if reduction == "none" else reduction,
    )
    np.testing.assert_allclose(logits.grad.numpy(), grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kernel", ["fused", "pairs", "sorted", "dense"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_soft_ramp_matches_literal_loop(beta: float, kernel: str) -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(0.0, 2.0, (6, 40))
    targets = (rng.random((6, 40)) < 0.2).astype(float)
    loss = RMLCLoss.paper(
        s=-0.6, kappa=2.0, rank="exact", ramp_beta=beta, reduction="none", kernel=kernel
    )
    got = loss(torch.tensor(logits), torch.tensor(targets))
    expected, _, _ = reference.literal_loss(
        logits.tolist(), targets.tolist(), s=-0.6, kappa=2.0, beta=beta
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("seed", range(30))
def test_sampled_ranks_with_fixed_order_match_literal_loop(seed: int) -> None:
    """Given one random order per (sample, positive), the vectorized draws are the loop's."""
    rng = np.random.default_rng(1000 + seed)
    n, m = int(rng.integers(1, 5)), int(rng.choice([2, 5, 12, 30, 81]))
    logits = rng.normal(0.0, 1.5, (n, m))
    targets = (rng.random((n, m)) < 0.3).astype(float)
    keys = rng.random((n, m, m))
    orders = {
        (i, j): sorted((k for k in range(m) if targets[i, k] == 0), key=lambda k: keys[i, j, k])
        for i in range(n)
        for j in range(m)
        if targets[i, j] == 1
    }
    rounding = "round" if seed % 2 else "floor"
    per_sample, _, ranks = reference.literal_loss(
        logits.tolist(),
        targets.tolist(),
        rank="sampled",
        orders=orders,
        rounding=rounding,
        reduction="none",
    )

    f, positive = torch.tensor(logits), torch.tensor(targets) == 1
    draws = R.draws_from_keys(f, positive, torch.tensor(keys))
    vector_ranks = R.ranks_from_draws(draws, m, rounding)
    for (i, j), r in ranks.items():
        assert vector_ranks[i, j].item() == r, (i, j)
    assert int(vector_ranks[~positive].abs().sum()) == 0

    for kernel in ("fused", "pairs", "sorted", "dense"):
        total = F.ranking_loss(f, positive, rank=vector_ranks, kernel=kernel)
        np.testing.assert_allclose(total.numpy(), per_sample, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", ["fused", "pairs", "sorted", "dense"])
def test_sampled_forward_and_backward_use_the_same_ranks(kernel: str) -> None:
    """One positive per row and kappa = 0: the loss is L(r) * pair_sum, so the forward value
    reveals r; the gradient must be Eq. 7's subgradient for that same r."""
    torch.manual_seed(0)
    n, m = 64, 50
    logits = torch.randn(n, m, dtype=torch.float64) * 2.0
    targets = torch.zeros(n, m)
    targets[torch.arange(n), torch.randint(0, m, (n,))] = 1
    leaf = logits.clone().requires_grad_(True)
    loss = RMLCLoss.paper(
        kappa=0.0, reduction="none", generator=torch.Generator().manual_seed(3), kernel=kernel
    )
    values = loss(leaf, targets)
    values.sum().backward()

    positive = targets == 1
    pair_sum = F.ranking_loss(logits, positive, kappa=0.0, rank=torch.ones(n, m, dtype=torch.int64))
    harmonic = {reference.harmonic(r): r for r in range(m)}
    ranks = {}
    for i in range(n):
        j = int(positive[i].nonzero())
        weight = values[i].item() / pair_sum[i].item() if pair_sum[i] > 0 else 0.0
        r = min(harmonic, key=lambda h: abs(h - weight))
        assert abs(r - weight) < 1e-9
        ranks[(i, j)] = harmonic[r]
    assert len(set(ranks.values())) > 3  # the ranks really were sampled, not all equal
    expected = reference.literal_subgradient(
        logits.tolist(), targets.tolist(), ranks, kappa=0.0, reduction="sum"
    )
    np.testing.assert_allclose(leaf.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_sampled_loss_literal_loop_agrees_in_expectation() -> None:
    """Averaged over many draws, the vectorized sampled loss equals the loop's (shuffles)."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 1.0, (3, 12))
    targets = (rng.random((3, 12)) < 0.4).astype(float)
    f, y = torch.tensor(logits), torch.tensor(targets)
    loss = RMLCLoss.paper(kappa=1.0, generator=torch.Generator().manual_seed(0))
    vector = torch.stack([loss(f, y) for _ in range(4000)])
    shuffler = random.Random(0)
    literal = [
        reference.literal_loss(
            logits.tolist(), targets.tolist(), kappa=1.0, rank="sampled", rng=shuffler
        )[1]
        for _ in range(4000)
    ]
    stderr = float(np.hypot(vector.std().item(), np.std(literal)) / np.sqrt(4000))
    assert abs(vector.mean().item() - float(np.mean(literal))) < 5 * stderr
