"""The remedies of the ramp's slow start (warm start, balanced margin) and the dynamics
statistics that measure it, against literal loops."""

from __future__ import annotations

import pytest
import torch

import reference
from rmlc.losses import RMLCLoss, WARPLoss
from rmlc.losses import functional as F
from rmlc.losses.dynamics import flat_pair_share, ramp_statistics


def batch(n: int = 6, m: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, m, generator=generator, dtype=torch.float64) * 1.5
    targets = (torch.rand(n, m, generator=generator) < 0.3).double()
    targets[:, 0], targets[:, 1] = 1.0, 0.0  # every row has a positive and a negative
    return logits, targets


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("beta", [1.0, 0.9])
def test_balanced_margin_matches_the_literal_sum(seed: int, beta: float) -> None:
    logits, targets = batch(seed=seed)
    got = F.balanced_margin_term(logits, targets.bool(), -0.8, beta)
    for i in range(len(logits)):
        y = [1 if t == 1 else -1 for t in targets[i].tolist()]
        want = reference.literal_balanced_margin(logits[i].tolist(), y, -0.8, beta)
        assert got[i].item() == pytest.approx(want, abs=1e-12)


def test_balanced_margin_weights_each_side_equally() -> None:
    """One positive among nine labels weighs as much as the eight negatives together."""
    logits = torch.zeros(1, 9, dtype=torch.float64)  # every margin violated by 1
    positive = torch.zeros(1, 9, dtype=torch.bool)
    positive[0, 0] = True
    logits.requires_grad_(True)
    F.balanced_margin_term(logits, positive).sum().backward()
    grad = logits.grad[0]
    assert grad[0].item() == pytest.approx(-4.5)
    assert grad[1:].sum().item() == pytest.approx(4.5)
    # A row without positives weighs its negatives to m / 2 in all.
    empty = F.balanced_margin_term(torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.bool))
    assert empty.item() == pytest.approx(2.0)


@pytest.mark.parametrize("kernel", ["fused", "pairs", "sorted", "dense"])
@pytest.mark.parametrize("beta", [1.0, 0.0])
def test_rmlc_with_balanced_margin_is_ranking_plus_balanced_margin(
    kernel: str, beta: float
) -> None:
    """Each kernel computes the balanced margin term within its pass (the numba and Triton
    kernels in their loop): value and gradient equal the ranking term plus the separate
    balanced margin function."""
    logits, targets = batch()
    targets[0] = 0.0  # a row without positives: its negatives alone carry the term
    loss = RMLCLoss(
        rank="exact", kappa=3.0, ramp_beta=1.0, reduction="none", hinge_steps=0, kernel=kernel
    )
    if beta == 0.0:
        loss = RMLCLoss(rank="exact", kappa=3.0, reduction="none", hinge_steps=10**6, kernel=kernel)
    leaf = logits.clone().requires_grad_(True)
    got = loss(leaf, targets)
    got.sum().backward()
    reference_leaf = logits.clone().requires_grad_(True)
    ranking = F.ranking_loss(reference_leaf, targets, kappa=0.0, beta=beta, rank="exact")
    margin = F.balanced_margin_term(reference_leaf, targets.bool(), beta=beta)
    want = ranking + 3.0 * margin
    want.sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(leaf.grad, reference_leaf.grad)
    # and it differs from the paper's margin term on these rows
    paper = RMLCLoss.paper(rank="exact", kappa=3.0, reduction="none")(logits, targets)
    assert not torch.allclose(paper, want)


def test_hinge_steps_start_with_the_hinge_then_switch_to_the_ramp() -> None:
    logits, targets = batch(seed=3)
    logits = logits * 3  # many pairs beyond the ramp's cap: ramp and hinge differ
    warm = RMLCLoss(rank="exact", hinge_steps=2)
    hinge = RMLCLoss(rank="exact", ramp_beta=0.0, hinge_steps=0)
    ramp = RMLCLoss(rank="exact", hinge_steps=0)
    assert not torch.allclose(hinge(logits, targets), ramp(logits, targets))
    for _ in range(2):
        assert warm.current_beta == 0.0
        torch.testing.assert_close(warm(logits, targets), hinge(logits, targets))
    assert warm.current_beta == 1.0
    torch.testing.assert_close(warm(logits, targets), ramp(logits, targets))
    assert warm.steps_done == 3


def test_the_default_uses_the_hinge_in_training_and_evaluation_and_counts_nothing() -> None:
    logits, targets = batch(seed=3)
    logits = logits * 3  # many pairs beyond the ramp's cap: ramp and hinge differ
    default = RMLCLoss(rank="exact")
    hinge = RMLCLoss(rank="exact", ramp_beta=0.0, hinge_steps=0)
    ramp = RMLCLoss(rank="exact", hinge_steps=0)
    assert not torch.allclose(hinge(logits, targets), ramp(logits, targets))
    for mode in (True, False, True):
        default.train(mode)
        assert default.in_warm_start and default.current_beta == 0.0
        torch.testing.assert_close(default(logits, targets), hinge(logits, targets))
    assert default.steps_done == 0


@pytest.mark.parametrize(
    ("ramp_start", "steps", "want"), [(1.0, 50, None), (0.5, 50, 25), (0, 7, 0)]
)
def test_a_ramp_start_of_one_never_switches_the_ramp_on(ramp_start, steps, want) -> None:
    from rmlc.losses.ranking import hinge_steps_for

    assert hinge_steps_for(ramp_start, steps) == want


def test_hinge_steps_count_training_calls_only_and_survive_state_dict() -> None:
    logits, targets = batch()
    warm = RMLCLoss(rank="exact", hinge_steps=5).eval()
    # evaluation: the ramp (what the loss is after training), not counted
    torch.testing.assert_close(
        warm(logits, targets), RMLCLoss(rank="exact", hinge_steps=0)(logits, targets)
    )
    assert warm.steps_done == 0
    warm.train()
    for _ in range(3):
        warm(logits, targets)
    restored = RMLCLoss(hinge_steps=5)
    restored.load_state_dict(warm.state_dict())
    assert restored.steps_done == 3 and restored.current_beta == 0.0


@pytest.mark.parametrize("value", [-1, 2.5, True, "3"])
def test_hinge_steps_must_be_a_non_negative_integer(value) -> None:
    with pytest.raises(ValueError, match="hinge_steps"):
        RMLCLoss(hinge_steps=value)


@pytest.mark.parametrize("seed", range(4))
def test_ramp_statistics_match_the_literal_count(seed: int) -> None:
    logits, targets = batch(n=7, m=11, seed=seed)
    logits[0, 2] = logits[0, 0] + 0.8  # a tie at the cap: f_j - f_k = s exactly is flat
    got = ramp_statistics(logits, targets)
    want = reference.literal_ramp_statistics(logits.tolist(), targets.tolist())
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_flat_pair_share_of_a_batch_without_pairs_is_zero() -> None:
    assert flat_pair_share(torch.randn(3, 4), torch.zeros(3, 4, dtype=torch.bool), -0.8) == (
        0.0,
        0.0,
    )


def test_gradient_norms_are_those_of_each_term() -> None:
    logits, targets = batch(seed=1)
    stats = ramp_statistics(logits, targets, kappa=2.0)
    leaf = logits.clone().requires_grad_(True)
    (2.0 * F.margin_term(leaf, targets.bool())).mean().backward()
    assert stats["margin_grad_norm"] == pytest.approx(leaf.grad.norm().item(), rel=1e-6)
    assert stats["ranking_grad_norm"] > 0
    assert ramp_statistics(logits, targets, kappa=0.0)["margin_grad_norm"] == 0.0


def test_warp_has_no_warm_start_state() -> None:
    assert WARPLoss().state_dict() == {}


def test_default_is_the_recommended_configuration_and_paper_is_the_papers() -> None:
    from rmlc.losses.ranking import DEFAULT_HINGE_STEPS, PAPER

    default = RMLCLoss()
    assert default.balance_margin and default.hinge_steps is DEFAULT_HINGE_STEPS is None
    paper = RMLCLoss.paper()
    for key, value in PAPER.items():
        assert getattr(paper, key) == value, key
    assert RMLCLoss.paper(kappa=2.0).kappa == 2.0 and not RMLCLoss.paper(kappa=2.0).balance_margin
    # The paper's loss is the literal reference of METHOD.md, from the first call.
    logits, targets = batch(seed=4)
    _, want, _ = reference.literal_loss(logits.tolist(), targets.tolist(), rank="exact")
    got = RMLCLoss.paper(rank="exact")(logits, targets)
    assert got.item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.9, 0.0])
def test_balanced_margin_gradient_matches_autograd_through_the_ramp(beta: float) -> None:
    logits, targets = batch(seed=7)
    positive = targets.bool()
    leaf = logits.clone().requires_grad_(True)
    weights = F.balanced_margin_weights(positive, logits.dtype)
    upstream = torch.linspace(0.5, 2.0, len(logits), dtype=logits.dtype)
    want = (weights * F.ramp(torch.where(positive, leaf, -leaf), -0.8, beta)).sum(dim=1)
    (want * upstream).sum().backward()
    expected = leaf.grad.clone()
    leaf.grad = None
    got = F.balanced_margin_term(leaf, positive, -0.8, beta)
    torch.testing.assert_close(got, want.detach())
    (got * upstream).sum().backward()
    torch.testing.assert_close(leaf.grad, expected)
    # float32 logits get a float32 gradient
    small = logits.float().requires_grad_(True)
    F.balanced_margin_term(small, positive).sum().backward()
    assert small.grad.dtype == torch.float32
