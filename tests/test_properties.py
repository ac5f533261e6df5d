"""Property-based tests (hypothesis) of the losses and metrics."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rmlc.losses import RMLCLoss, WARPLoss
from rmlc.losses import functional as F
from rmlc.metrics import mean_average_precision, topk_metrics

KERNELS = st.sampled_from(["fused", "pairs", "sorted", "dense"])


@st.composite
def problems(draw, max_n: int = 6, max_m: int = 12, scale: float = 10.0, grid: bool = False):
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    values = (
        st.integers(-40, 40).map(lambda v: v / 4) if grid else st.floats(-scale, scale, width=64)
    )
    logits = draw(arrays(np.float64, (n, m), elements=values))
    targets = draw(arrays(np.bool_, (n, m)))
    return torch.tensor(logits), torch.tensor(targets)


@settings(max_examples=60, deadline=None)
@given(problems(), KERNELS, st.randoms(use_true_random=False))
def test_permuting_samples_permutes_the_losses(problem, kernel, rng) -> None:
    logits, targets = problem
    order = torch.tensor(rng.sample(range(len(logits)), len(logits)))
    loss = RMLCLoss.paper(rank="exact", reduction="none", kernel=kernel)
    torch.testing.assert_close(loss(logits[order], targets[order]), loss(logits, targets)[order])


@settings(max_examples=60, deadline=None)
@given(problems(), KERNELS, st.randoms(use_true_random=False))
def test_permuting_labels_changes_nothing(problem, kernel, rng) -> None:
    logits, targets = problem
    order = torch.tensor(rng.sample(range(logits.shape[1]), logits.shape[1]))
    for loss in (
        RMLCLoss.paper(rank="exact", reduction="none", kernel=kernel),
        WARPLoss(rank="exact", reduction="none", kernel=kernel),
    ):
        torch.testing.assert_close(loss(logits[:, order], targets[:, order]), loss(logits, targets))


@settings(max_examples=60, deadline=None)
@given(problems(scale=1e4), st.floats(-0.99, 0.0), KERNELS)
def test_each_pair_costs_at_most_one_minus_s(problem, s, kernel) -> None:
    """With unit rank weights and no margin term the loss counts pairs, each at most 1 - s."""
    logits, targets = problem
    ones = torch.ones_like(logits, dtype=torch.int64)
    losses = F.ranking_loss(logits, targets, s=s, kappa=0.0, rank=ones, kernel=kernel)
    pairs = targets.sum(dim=1) * (~targets).sum(dim=1)
    assert torch.isfinite(losses).all()
    assert (losses <= pairs * (1 - s) + 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(problems(), st.floats(0.01, 5.0), st.data())
def test_raising_a_positive_score_never_raises_the_exact_loss(problem, step, data) -> None:
    logits, targets = problem
    positives = targets.nonzero()
    if len(positives) == 0:
        return
    i, j = positives[data.draw(st.integers(0, len(positives) - 1))].tolist()
    raised = logits.clone()
    raised[i, j] += step
    loss = RMLCLoss.paper(rank="exact", reduction="none")
    assert loss(raised, targets)[i] <= loss(logits, targets)[i] + 1e-9


@settings(max_examples=60, deadline=None)
@given(problems(scale=1e4), st.sampled_from([torch.float16, torch.bfloat16, torch.float32]))
def test_finite_for_any_finite_logits(problem, dtype) -> None:
    logits, targets = problem
    leaf = logits.to(dtype).clamp(-6e4, 6e4).requires_grad_(True)
    weights = torch.full((len(logits),), 1e-30)
    for loss in (RMLCLoss.paper(), WARPLoss()):
        value = loss(leaf, targets, weights)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(leaf.grad).all()
        leaf.grad = None


@settings(max_examples=60, deadline=None)
@given(problems(max_n=20, max_m=8, grid=True), st.sampled_from(["exp", "affine", "cube"]))
def test_metrics_are_invariant_to_increasing_transforms(problem, transform) -> None:
    """Scores on a grid of quarters (with ties), so that the transforms stay strictly
    increasing in floating point."""
    scores, targets = problem
    if not targets.any():
        return
    changed = {
        "exp": lambda x: torch.exp(x / 10),
        "affine": lambda x: 3 * x + 1,
        "cube": lambda x: x**3,
    }[transform](scores)
    before = topk_metrics(scores, targets, k=3, threshold=None)
    after = topk_metrics(changed, targets, k=3, threshold=None)
    assert before == after
    assert (
        abs(mean_average_precision(scores, targets) - mean_average_precision(changed, targets))
        < 1e-9
    )
