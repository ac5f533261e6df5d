"""Loss modules: call contract, reductions, weights, baselines, numerics and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import (
    LOSSES,
    AsymmetricLoss,
    BCELoss,
    GeneralizedCrossEntropy,
    LargeLossRejection,
    RMLCLoss,
    SoftmaxLoss,
    WARPLoss,
    build_loss,
)
from rmlc.losses import functional as F


def _rejecting(epoch: int, delta_rel: float = 5.0) -> LargeLossRejection:
    loss = LargeLossRejection(delta_rel=delta_rel)
    loss.set_epoch(epoch)
    return loss


ALL_LOSSES = [
    RMLCLoss.paper(),
    RMLCLoss.paper(rank="exact", kernel="sorted"),
    RMLCLoss.paper(ramp_beta=0.9, rounding="round"),
    WARPLoss(),
    WARPLoss(rank="exact", kernel="sorted"),
    BCELoss(),
    SoftmaxLoss(),
    AsymmetricLoss(),
    GeneralizedCrossEntropy(),
    _rejecting(2),  # 10% of each batch's entries rejected
]
IDS = [
    "rmlc",
    "rmlc-exact-sorted",
    "rmlc-authors",
    "warp",
    "warp-exact-sorted",
    "bce",
    "softmax",
    "asl",
    "gce",
    "llr",
]


def batch(n: int = 8, m: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, m, generator=generator) * 2
    targets = (torch.rand(n, m, generator=generator) < 0.3).float()
    targets[0, 0] = 1
    return logits, targets


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
def test_reductions_and_sample_weights(loss) -> None:
    logits, targets = batch()
    weight = torch.rand(8)
    loss.reduction = "none"
    per_sample = loss(logits, targets, weight)
    unweighted = (
        loss(logits, targets) if "exact" in repr(loss) or not hasattr(loss, "rank") else None
    )
    assert per_sample.shape == (8,)
    loss.reduction = "sum"
    total = loss(logits, targets, weight)
    loss.reduction = "mean"
    mean = loss(logits, targets, weight)
    if not hasattr(loss, "rank") or loss.rank == "exact":  # deterministic losses
        torch.testing.assert_close(total, per_sample.sum())
        torch.testing.assert_close(mean, per_sample.sum() / 8)
        torch.testing.assert_close(per_sample, unweighted * weight)
    zero = loss(logits, targets, torch.zeros(8))
    assert zero.item() == 0.0


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
def test_signed_and_binary_targets_agree(loss) -> None:
    logits, targets = batch()
    torch.manual_seed(0)
    if hasattr(loss, "generator"):
        loss.generator = torch.Generator().manual_seed(1)
    a = loss(logits, targets)
    if hasattr(loss, "generator"):
        loss.generator = torch.Generator().manual_seed(1)
    b = loss(logits, targets * 2 - 1)
    if hasattr(loss, "generator"):
        loss.generator = torch.Generator().manual_seed(1)
    c = loss(logits, targets.bool())
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_generator_makes_sampled_loss_reproducible() -> None:
    logits, targets = batch(64, 50)
    first = RMLCLoss.paper(generator=torch.Generator().manual_seed(5))(logits, targets)
    second = RMLCLoss.paper(generator=torch.Generator().manual_seed(5))(logits, targets)
    other = RMLCLoss.paper(generator=torch.Generator().manual_seed(6))(logits, targets)
    assert first.item() == second.item()
    assert first.item() != other.item()


@pytest.mark.parametrize("kernel", ["fused", "pairs", "sorted", "dense"])
def test_kernels_agree_in_float32(kernel: str) -> None:
    logits, targets = batch(64, 300, seed=3)
    exact64 = RMLCLoss.paper(rank="exact", reduction="none")(logits.double(), targets)
    logits32 = logits.clone().requires_grad_(True)
    exact32 = RMLCLoss.paper(rank="exact", reduction="none", kernel=kernel)(logits32, targets)
    assert exact32.dtype == torch.float32
    torch.testing.assert_close(exact32.double(), exact64, rtol=1e-5, atol=1e-4)
    exact32.sum().backward()
    logits64 = logits.double().requires_grad_(True)
    RMLCLoss.paper(rank="exact", reduction="sum")(logits64, targets).backward()
    torch.testing.assert_close(logits32.grad.double(), logits64.grad, rtol=1e-4, atol=1e-4)


def test_bce_is_binary_relevance() -> None:
    logits, targets = batch()
    expected = (
        torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 8
    )
    torch.testing.assert_close(BCELoss()(logits, targets), expected)


def test_softmax_normalises_targets() -> None:
    logits, targets = batch()
    expected = []
    for row, target in zip(logits, targets, strict=True):
        if target.sum() == 0:
            expected.append(torch.tensor(0.0))
            continue
        expected.append(-(target / target.sum() * torch.log_softmax(row, 0)).sum())
    torch.testing.assert_close(
        SoftmaxLoss(reduction="none")(logits, targets), torch.stack(expected)
    )


def test_single_label_softmax_is_cross_entropy() -> None:
    logits = torch.randn(16, 5)
    labels = torch.randint(0, 5, (16,))
    targets = torch.nn.functional.one_hot(labels, 5)
    torch.testing.assert_close(
        SoftmaxLoss()(logits, targets), torch.nn.functional.cross_entropy(logits, labels)
    )


def test_asymmetric_loss_literal() -> None:
    logits, targets = batch()
    loss = AsymmetricLoss(gamma_neg=4, gamma_pos=1, clip=0.05, reduction="sum")(logits, targets)
    expected = 0.0
    for x, y in zip(logits.flatten().tolist(), targets.flatten().tolist(), strict=True):
        p = 1 / (1 + np.exp(-x))
        if y == 1:
            expected -= (1 - p) ** 1 * np.log(max(p, 1e-8))
        else:
            p_neg = min(1 - p + 0.05, 1.0)
            expected -= (1 - p_neg) ** 4 * np.log(max(p_neg, 1e-8))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_asymmetric_focus_is_not_differentiated() -> None:
    logits = torch.tensor([[0.3, -1.2]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0]])
    AsymmetricLoss(gamma_pos=1, gamma_neg=4, clip=0.0)(logits, targets).backward()
    p = torch.sigmoid(logits.detach())[0]
    # d/dx of -(1 - p)^g log p with (1 - p)^g held constant is -(1 - p)^g (1 - p)
    expected_pos = -(1 - p[0]) * (1 - p[0])
    expected_neg = p[1] ** 4 * p[1]
    torch.testing.assert_close(logits.grad[0], torch.stack([expected_pos, expected_neg]))


# ---- numerical robustness -------------------------------------------------------------


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_finite_losses_and_gradients(loss, dtype: torch.dtype, scale: float) -> None:
    logits, targets = batch(32, 81)
    logits = (torch.sign(logits) * scale).to(dtype).requires_grad_(True)
    value = loss(logits, targets)
    assert torch.isfinite(value).all()
    value.backward()
    assert logits.grad.dtype == dtype
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
def test_equal_logits_and_batch_of_one(loss) -> None:
    for logits, targets in [
        (torch.zeros(4, 7, requires_grad=True), batch(4, 7)[1]),
        (torch.randn(1, 7, requires_grad=True), torch.tensor([[1.0, 0, 0, 1, 0, 0, 0]])),
        (torch.randn(3, 1, requires_grad=True), torch.tensor([[1.0], [0.0], [1.0]])),
    ]:
        value = loss(logits, targets, torch.full((logits.shape[0],), 1e-12))
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_ramp_pair_penalty_is_bounded() -> None:
    """A single wrong label costs at most 1 - s per pair however far its score lies."""
    logits = torch.tensor([[-1e4, 1e4, 1e4]], dtype=torch.float64)
    targets = torch.tensor([[1.0, 0, 0]])
    ranking = RMLCLoss.paper(s=-0.8, kappa=0.0, rank="exact")(logits, targets)
    assert ranking.item() == pytest.approx(reference.harmonic(2) * 2 * 1.8)
    hinge = WARPLoss(rank="exact")(logits, targets)
    assert hinge.item() > 1e4


def test_no_positive_rows_cost_only_the_margin_term() -> None:
    logits = torch.randn(5, 9, dtype=torch.float64)
    targets = torch.zeros(5, 9)
    got = RMLCLoss.paper(kappa=2.0, reduction="none")(logits, targets)
    torch.testing.assert_close(got, 2.0 * F.margin_term(logits, targets.bool()))
    assert WARPLoss()(logits, targets).item() == 0.0


def test_autograd_ramp_matches_kernel_gradient() -> None:
    """The kernel's hand-derived gradient equals autograd through a dense ramp formulation."""
    torch.manual_seed(1)
    logits = torch.randn(6, 12, dtype=torch.float64)
    positive = torch.rand(6, 12) < 0.3
    ranks = torch.randint(0, 12, (6, 12))
    leaf = logits.clone().requires_grad_(True)
    F.ranking_loss(leaf, positive, rank=ranks, kappa=1.5).sum().backward()

    dense = logits.clone().requires_grad_(True)
    from rmlc.losses.ranks import rank_weights, violator_counts

    violators = violator_counts(logits, positive)
    weights = rank_weights(ranks) * (violators > 0) * positive
    pair = F.ramp(dense[:, :, None] - dense[:, None, :], -0.8)  # (N, j, k)
    mask = positive[:, :, None] & ~positive[:, None, :]
    ranking = (weights[:, :, None] * pair * mask).sum(dim=(1, 2))
    (ranking + 1.5 * F.margin_term(dense, positive)).sum().backward()
    torch.testing.assert_close(leaf.grad, dense.grad)


@pytest.mark.parametrize("kernel", ["auto", "fused", "pairs", "sorted", "dense"])
@pytest.mark.parametrize("density", [0.01, 0.5])
def test_memory_stays_linear_in_labels(kernel: str, density: float) -> None:
    """At m = 1000 no single allocation comes near N m^2; each stays O(N m)."""
    n, m = 64, 1000
    logits = torch.randn(n, m, requires_grad=True)
    targets = (torch.rand(n, m) < density).float()
    with torch.profiler.profile(profile_memory=True) as prof:
        RMLCLoss.paper(kernel=kernel)(logits, targets).backward()
    largest = max(event.cpu_memory_usage for event in prof.events())
    if kernel == "dense":  # blocks of at most 4 M pairs
        assert largest <= (1 << 22) * 4 * 1.01, largest
    else:  # chunks of 256 rows of m, or a few N m arrays
        assert largest <= 256 * m * 4 + 8 * n * m * 8, (kernel, largest)
    assert largest < n * m * m * 4 / 10


# ---- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (torch.tensor([[0.0, 2.0]]), r"found values \{0, 2\}"),
        (torch.tensor([[0.5, 1.0]]), r"found values \{0.5, 1\}"),
        (torch.tensor([[-1.0, 0.0, 1.0]]), r"found values \{-1, 0, 1\}"),
        (torch.tensor([[float("nan"), 1.0]]), r"nan"),
    ],
)
@pytest.mark.parametrize("name", list(LOSSES))
def test_bad_target_values(name: str, targets: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_loss(name)(torch.zeros_like(targets), targets)


@pytest.mark.parametrize("name", list(LOSSES))
def test_bad_shapes_and_types(name: str) -> None:
    loss = build_loss(name)
    with pytest.raises(ValueError, match=r"shape \(N, m\)"):
        loss(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="does not match"):
        loss(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(TypeError, match="floating point"):
        loss(torch.zeros(3, 4, dtype=torch.int64), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="non-empty"):
        loss(torch.zeros(0, 4), torch.zeros(0, 4))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        loss(np.zeros((3, 4)), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="are on meta"):
        loss(torch.zeros(3, 4), torch.zeros(3, 4, device="meta"))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(N,\)"):
        loss(torch.zeros(3, 4), torch.zeros(3, 4), torch.ones(4))
    with pytest.raises(ValueError, match="non-negative, found -1"):
        loss(torch.zeros(3, 4), torch.zeros(3, 4), torch.tensor([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        loss(torch.zeros(3, 4), torch.zeros(3, 4), torch.tensor([1.0, float("nan"), 0.0]))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: RMLCLoss.paper(s=-1.0), r"s must lie in \(-1, 0\]"),
        (lambda: RMLCLoss.paper(s=0.1), r"s must lie in \(-1, 0\]"),
        (lambda: RMLCLoss.paper(kappa=-1.0), r"kappa must lie in \[0, inf\); got -1.0"),
        (lambda: RMLCLoss.paper(kappa=float("nan")), r"kappa must lie in \[0, inf\); got nan"),
        (lambda: RMLCLoss.paper(ramp_beta=1.5), r"ramp_beta must lie in \[0, 1\]"),
        (lambda: RMLCLoss.paper(rank="approx"), "rank must be one of"),
        (lambda: WARPLoss(rounding="ceil"), "rounding must be one of"),
        (lambda: WARPLoss(kernel="gathered"), "kernel must be one of"),
        (lambda: BCELoss(reduction="avg"), "reduction must be one of"),
        (lambda: AsymmetricLoss(gamma_neg=-1), "must be >= 0"),
        (lambda: AsymmetricLoss(clip=1.0), r"clip must lie in \[0, 1\)"),
        (lambda: build_loss("wrap"), "unknown loss 'wrap'"),
        (lambda: build_loss("bce", kappa=5), "does not take parameters"),
        (lambda: build_loss("rmlc", kappa=-1.0), r"^kappa must lie in \[0, inf\)"),  # taken
    ],
)
def test_bad_hyper_parameters(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()
