"""GCE and LL-R, the noisy-label baselines, against literal loops (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import GeneralizedCrossEntropy, LargeLossRejection, build_loss
from rmlc.losses import functional as F


def random_case(seed: int):
    """Logits, 0/1 targets and weights of a random shape (1-9 rows, 1-12 labels), float64."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 10)), int(rng.integers(1, 13))
    logits = torch.from_numpy(rng.normal(scale=3.0, size=(n, m)))
    targets = torch.from_numpy((rng.random((n, m)) < rng.uniform(0.05, 0.6)).astype(np.float64))
    weights = torch.from_numpy(rng.uniform(0.0, 2.0, size=n))
    return logits, targets, weights


def loss_and_gradient(loss, logits, targets, weights):
    leaf = logits.clone().requires_grad_(True)
    value = loss(leaf, targets, weights)
    value.sum().backward()
    return value.detach(), leaf.grad


# ---- GCE ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("signed", [False, True])
def test_gce_and_its_gradient_equal_the_literal_loop(seed: int, reduction: str, signed) -> None:
    logits, targets, weights = random_case(seed)
    q = [0.7, 1.0, 0.25][seed % 3]
    given = targets * 2 - 1 if signed else targets
    value, grad = loss_and_gradient(
        GeneralizedCrossEntropy(q=q, reduction=reduction), logits, given, weights
    )
    per_sample, reduced, expected = reference.literal_gce(
        logits.tolist(), targets.tolist(), q, weights.tolist(), reduction
    )
    assert value.item() == pytest.approx(reduced, rel=1e-12, abs=1e-12)
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))
    none = GeneralizedCrossEntropy(q=q, reduction="none")(logits, given, weights)
    torch.testing.assert_close(none, torch.tensor(per_sample, dtype=torch.float64))


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_gce_without_positives_or_without_negatives(fill: float) -> None:
    logits = torch.randn(4, 6, dtype=torch.float64)
    targets = torch.full((4, 6), fill, dtype=torch.float64)
    value, grad = loss_and_gradient(GeneralizedCrossEntropy(), logits, targets, None)
    _, reduced, expected = reference.literal_gce(logits.tolist(), targets.tolist(), 0.7)
    assert value.item() == pytest.approx(reduced, rel=1e-12)
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))


def test_gce_at_its_limits_is_mae_and_bce() -> None:
    """``q = 1`` is the mean absolute error ``sum_j (1 - p_j)``; ``q -> 0`` tends to BCE."""
    logits = torch.randn(8, 5, dtype=torch.float64)
    targets = (torch.rand(8, 5) < 0.4).double()
    p = torch.where(targets > 0, torch.sigmoid(logits), 1 - torch.sigmoid(logits))
    mae = GeneralizedCrossEntropy(q=1.0, reduction="none")(logits, targets)
    torch.testing.assert_close(mae, (1 - p).sum(dim=1))
    near_zero = GeneralizedCrossEntropy(q=1e-6)(logits, targets)
    assert near_zero.item() == pytest.approx(build_loss("bce")(logits, targets).item(), rel=1e-4)


def test_gce_is_bounded_where_bce_is_not() -> None:
    """A confidently wrong label costs at most ``1 / q`` (the robustness GCE trades for
    slower fitting); BCE grows without bound."""
    logits = torch.tensor([[-1e4, 1e4]])
    targets = torch.tensor([[1.0, 0.0]])
    assert GeneralizedCrossEntropy(q=0.5)(logits, targets).item() == pytest.approx(4.0)
    assert build_loss("bce")(logits, targets).item() > 1e4


@pytest.mark.parametrize(
    ("q", "message"),
    [
        (0.0, r"q must lie in \(0, 1\], got 0.0"),
        (-0.5, r"q must lie in \(0, 1\]"),
        (1.5, r"q must lie in \(0, 1\]"),
        (float("nan"), r"q must lie in \(0, 1\]"),
        (True, r"q must be a number in \(0, 1\]"),
        ("0.7", r"q must be a number in \(0, 1\]"),
    ],
)
def test_gce_refuses_a_bad_q(q, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeneralizedCrossEntropy(q=q)
    with pytest.raises(ValueError, match=message):
        build_loss("gce", q=q)


# ---- LL-R --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("signed", [False, True])
def test_llr_and_its_gradient_equal_the_literal_loop(seed: int, reduction: str, signed) -> None:
    logits, targets, weights = random_case(seed)
    epoch, delta_rel = [(0, 0.2), (1, 0.2), (3, 5.0), (7, 10.0), (2, 60.0)][seed % 5]
    given = targets * 2 - 1 if signed else targets
    loss = LargeLossRejection(delta_rel=delta_rel, reduction=reduction)
    loss.set_epoch(epoch)
    value, grad = loss_and_gradient(loss, logits, given, weights)
    per_sample, reduced, expected, _ = reference.literal_llr(
        logits.tolist(), targets.tolist(), epoch, delta_rel, weights.tolist(), reduction
    )
    assert value.item() == pytest.approx(reduced, rel=1e-12, abs=1e-12)
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))
    loss.reduction = "none"
    torch.testing.assert_close(
        loss(logits, given, weights), torch.tensor(per_sample, dtype=torch.float64)
    )


def test_llr_rejects_the_largest_negative_losses_from_the_second_epoch() -> None:
    """Epoch 0 is BCE; at 10% of 2 x 5 entries one entry goes, the largest-loss negative
    (the highest-scored negative), never a positive however large its loss."""
    logits = torch.tensor([[5.0, -3.0, 2.0, 0.0, 1.0], [-6.0, 0.5, 4.0, -1.0, 0.0]])
    targets = torch.tensor([[0.0, 0, 0, 0, 1], [1.0, 0, 0, 0, 0]])  # -6 positive: huge loss
    loss = LargeLossRejection(delta_rel=10.0, reduction="sum")
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert loss(logits, targets).item() == pytest.approx(bce.sum().item())
    loss.set_epoch(1)
    assert loss.rejection_rate == pytest.approx(0.1)
    assert loss(logits, targets).item() == pytest.approx(bce.sum().item() - bce[0, 0].item())
    loss.set_epoch(2)  # 20%: two entries, f = 5 and f = 4
    expected = bce.sum() - bce[0, 0] - bce[1, 2]
    assert loss(logits, targets).item() == pytest.approx(expected.item())


def test_llr_rejects_every_entry_tied_with_the_kth() -> None:
    """As the authors' ``torch.where(loss < threshold, ...)``: equal logits give equal
    losses, and all negatives tied with the k-th largest go, not just k of them."""
    logits = torch.zeros(3, 4, dtype=torch.float64)
    targets = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.float64)
    loss = LargeLossRejection(delta_rel=1.0, reduction="sum")
    loss.set_epoch(1)  # k = ceil(12 * 0.01) = 1
    _, reduced, _, rejected = reference.literal_llr(logits.tolist(), targets.tolist(), 1, 1.0)
    assert len(rejected) == 10 and reduced == pytest.approx(2 * np.log(2) / 3)
    assert loss(logits, targets).item() == pytest.approx(2 * np.log(2))


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_llr_without_positives_or_without_negatives(fill: float) -> None:
    """No positives: negatives are rejected as ever. No negatives: nothing to reject, BCE."""
    logits = torch.randn(5, 7, dtype=torch.float64)
    targets = torch.full((5, 7), fill, dtype=torch.float64)
    loss = LargeLossRejection(delta_rel=10.0)
    loss.set_epoch(2)
    value, grad = loss_and_gradient(loss, logits, targets, None)
    _, reduced, expected, rejected = reference.literal_llr(
        logits.tolist(), targets.tolist(), 2, 10.0
    )
    assert len(rejected) == (7 if fill == 0 else 0)  # ceil(35 * 0.2)
    assert value.item() == pytest.approx(reduced, rel=1e-12)
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))


def test_llr_rate_beyond_the_negatives_rejects_them_all_and_keeps_the_positives() -> None:
    logits = torch.randn(4, 5)
    targets = (torch.rand(4, 5) < 0.3).float()
    targets[0, 0] = 1
    loss = LargeLossRejection(delta_rel=100.0, reduction="sum")
    loss.set_epoch(3)  # rate capped at 1
    assert loss.rejection_rate == 1.0
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert loss(logits, targets).item() == pytest.approx((bce * targets).sum().item())


def test_llr_rejection_count_ignores_float_noise() -> None:
    """``ceil(N m rate)`` of the authors, on the product rounded to 9 decimals: 0.1 + 0.2
    percent of 1000 entries is 3 entries, not 4."""
    assert F.rejection_count(1000, (0.1 + 0.2) / 100) == 3
    assert F.rejection_count(1000, 0.0021) == 3
    assert F.rejection_count(1280, 0.002) == 3  # COCO, batch 16, the second epoch
    assert F.rejection_count(7, 0.0) == 0


def test_llr_keeps_its_epoch_in_its_state() -> None:
    loss = LargeLossRejection(delta_rel=0.5)
    loss.set_epoch(4)
    again = LargeLossRejection(delta_rel=0.5)
    again.load_state_dict(loss.state_dict())
    assert again.epoch == 4 and again.rejection_rate == pytest.approx(0.02)


def test_llr_in_half_precision_matches_float32() -> None:
    logits = torch.randn(16, 20)
    targets = (torch.rand(16, 20) < 0.2).float()
    loss = LargeLossRejection(delta_rel=5.0)
    loss.set_epoch(1)
    half = logits.half()
    torch.testing.assert_close(loss(half, targets), loss(half.float(), targets))
    assert loss(half, targets).dtype == torch.float32


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: LargeLossRejection(delta_rel=-0.1), r"delta_rel must lie in \[0, 100\]"),
        (lambda: LargeLossRejection(delta_rel=101), r"delta_rel must lie in \[0, 100\]"),
        (lambda: LargeLossRejection(delta_rel=float("inf")), r"delta_rel must lie in \[0, 100\]"),
        (lambda: LargeLossRejection(delta_rel=True), r"percent of the batch's entries"),
        (lambda: LargeLossRejection(delta_rel="0.2"), r"got '0.2'"),
        (lambda: LargeLossRejection().set_epoch(-1), r"epoch must be an integer >= 0; got -1"),
        (lambda: LargeLossRejection().set_epoch(1.5), r"epoch must be an integer >= 0; got 1.5"),
        (lambda: build_loss("llr", delta=0.2), "does not take parameters"),
    ],
)
def test_llr_refuses_bad_parameters(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()
