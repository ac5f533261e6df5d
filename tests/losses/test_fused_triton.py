"""The fused GPU (Triton) kernel against the literal loop, its sampler and its inputs.

Without a GPU, Triton's interpreter runs the kernel on CPU tensors (tests/conftest.py
switches it on); with one, the compiled kernel runs on CUDA. Either way the kernel's
results are checked through the loss modules, by routing ``kernel="fused"`` to it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import RMLCLoss, WARPLoss, fused_triton
from rmlc.losses import functional as F
from rmlc.losses import ranks as R
from tests.losses import test_ranking_reference as ranking_reference

pytestmark = pytest.mark.skipif(not fused_triton.available(), reason="triton is not installed")


def kernel_and_device() -> tuple[object, str]:
    """The interpreted kernel on CPU, or the compiled one on CUDA."""
    if torch.cuda.is_available():
        return None, "cuda"
    return fused_triton.interpreted(), "cpu"


def run_triton(f, positive, s, beta, kappa, rank, rounding, generator, positive_count=None):
    """``fused_kernel``'s signature, computed by the Triton kernel (results on CPU)."""
    kernel, device = kernel_and_device()
    rank = rank.to(device) if isinstance(rank, torch.Tensor) else rank
    per_sample, grad = fused_triton.fused_triton_kernel(
        f.to(device), positive.to(device), s, beta, kappa, rank, rounding, generator, kernel
    )
    return per_sample.cpu(), grad.cpu()


@pytest.fixture
def triton_as_fused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kernel="fused"`` on CPU tensors runs the Triton kernel instead of numba's."""
    monkeypatch.setattr(F, "fused_kernel", run_triton)


@pytest.mark.parametrize("seed", range(0, 240, 3))
def test_exact_mode_matches_literal_loop(seed: int, triton_as_fused: None) -> None:
    ranking_reference.test_exact_mode_matches_literal_loop(seed, "fused")


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_soft_ramp_matches_literal_loop(beta: float, triton_as_fused: None) -> None:
    ranking_reference.test_soft_ramp_matches_literal_loop(beta, "fused")


@pytest.mark.parametrize("seed", range(0, 30, 3))
def test_given_ranks_match_literal_loop(seed: int, triton_as_fused: None) -> None:
    ranking_reference.test_sampled_ranks_with_fixed_order_match_literal_loop(seed)


def test_sampled_forward_and_backward_use_the_same_ranks(triton_as_fused: None) -> None:
    if torch.cuda.is_available():
        pytest.skip("the generator of this test is a CPU one")
    ranking_reference.test_sampled_forward_and_backward_use_the_same_ranks("fused")


@pytest.mark.parametrize(("n", "m", "density"), [(40, 12, 0.3), (16, 81, 0.05), (4, 1000, 0.01)])
def test_sampled_draws_invert_the_same_uniforms(n: int, m: int, density: float) -> None:
    """The kernel's draws are ``draws_by_inversion`` of its uniforms: one per label, in the
    order ``torch.rand((N, m))`` gives them, read at the positives."""
    draws_by_inversion = pytest.importorskip("rmlc.losses.fused").draws_by_inversion
    kernel, device = kernel_and_device()
    generator = torch.Generator(device).manual_seed(n + m)
    logits = torch.randn(n, m, dtype=torch.float64, device=device) * 2
    positive = (torch.rand(n, m, device=device) < density).double()
    positive[:, 0] = 1  # every row has a positive
    state = generator.get_state()
    sampled, _ = fused_triton.fused_triton_kernel(
        logits, positive, -0.8, 1.0, 5.0, "sampled", "floor", generator, kernel
    )
    generator.set_state(state)
    uniforms = torch.rand(n, m, dtype=torch.float64, device=device, generator=generator)

    mask = positive.bool()
    violators = R.violator_counts(logits, mask)
    negatives = (m - positive.sum(dim=1, keepdim=True)).expand(n, m)
    draws = draws_by_inversion(
        violators[mask].cpu().numpy(), negatives[mask].cpu().numpy(), uniforms[mask].cpu().numpy()
    )
    draw_table = torch.zeros(n, m, dtype=torch.int64)
    draw_table[mask.cpu()] = torch.from_numpy(draws)
    ranks = R.ranks_from_draws(draw_table, m, "floor")
    expected = F.ranking_loss(logits.cpu(), mask.cpu(), rank=ranks, kernel="pairs")
    torch.testing.assert_close(sampled.cpu(), expected, rtol=1e-12, atol=1e-12)
    assert len(set(ranks[mask.cpu() & (violators.cpu() > 0)].tolist())) > 1


def test_sampled_ranks_follow_the_generator() -> None:
    kernel, device = kernel_and_device()
    logits = torch.randn(24, 30, device=device) * 2
    positive = (torch.rand(24, 30, device=device) < 0.2).float()

    def loss(seed: int) -> torch.Tensor:
        generator = torch.Generator(device).manual_seed(seed)
        return fused_triton.fused_triton_kernel(
            logits, positive, -0.8, 1.0, 5.0, "sampled", "floor", generator, kernel
        )[0]

    assert torch.equal(loss(1), loss(1))
    assert not torch.equal(loss(1), loss(2))


def test_non_finite_scores_give_nan_for_their_sample_only(triton_as_fused: None) -> None:
    logits = torch.randn(4, 6, dtype=torch.float64)
    targets = torch.zeros(4, 6)
    targets[:, 0] = 1
    logits[1, 3], logits[2, 0] = float("nan"), float("-inf")
    leaf = logits.clone().requires_grad_(True)
    loss = RMLCLoss(rank="exact", reduction="none", kernel="fused")(leaf, targets)
    loss.sum().backward()
    assert torch.isnan(loss[1:3]).all() and torch.isnan(leaf.grad[1:3]).all()
    assert torch.isfinite(loss[[0, 3]]).all() and torch.isfinite(leaf.grad[[0, 3]]).all()


def test_positives_in_any_encoding_and_half_precision_logits() -> None:
    """The kernel reads bool, uint8 and float positives and float16 logits as they are."""
    kernel, device = kernel_and_device()
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(8, 20, generator=generator) * 2).to(device)
    mask = (torch.rand(8, 20, generator=generator) < 0.3).to(device)
    expected = fused_triton.fused_triton_kernel(
        logits, mask.float(), -0.8, 1.0, 5.0, "exact", "floor", None, kernel
    )
    for positive in (mask, mask.to(torch.uint8), mask.double()):
        got = fused_triton.fused_triton_kernel(
            logits, positive, -0.8, 1.0, 5.0, "exact", "floor", None, kernel
        )
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    half = logits.half()
    got = fused_triton.fused_triton_kernel(
        half, mask, -0.8, 1.0, 5.0, "exact", "floor", None, kernel
    )
    reference_value = fused_triton.fused_triton_kernel(
        half.float(), mask, -0.8, 1.0, 5.0, "exact", "floor", None, kernel
    )
    assert got[0].dtype == torch.float32
    torch.testing.assert_close(got, reference_value, rtol=0, atol=0)


def test_warp_is_the_hinge_without_margin_term(triton_as_fused: None) -> None:
    rng = np.random.default_rng(3)
    logits, targets = rng.normal(0, 2, (5, 30)), (rng.random((5, 30)) < 0.2).astype(float)
    got = WARPLoss(rank="exact", reduction="none", kernel="fused")(
        torch.tensor(logits), torch.tensor(targets)
    )
    expected, _, _ = reference.literal_loss(
        logits.tolist(), targets.tolist(), hinge_only=True, kappa=0.0
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="runs on CUDA; the logits are on cpu"):
        fused_triton.fused_triton_kernel(
            torch.zeros(2, 3), torch.zeros(2, 3), -0.8, 1.0, 5.0, "exact", "floor", None
        )
    kernel, device = kernel_and_device()
    too_many = fused_triton.MAX_LABELS + 1
    with pytest.raises(ValueError, match=f"at most {fused_triton.MAX_LABELS} labels"):
        fused_triton.fused_triton_kernel(
            torch.zeros(1, too_many, device=device),
            torch.zeros(1, too_many, device=device),
            -0.8,
            1.0,
            5.0,
            "exact",
            "floor",
            None,
            kernel,
        )


def test_cuda_kernel_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert F.choose_cuda_kernel(96, 80) == "fused"
    assert F.choose_cuda_kernel(4, fused_triton.MAX_LABELS + 1) == "sorted"
    monkeypatch.setattr(fused_triton, "available", lambda: False)
    assert F.choose_cuda_kernel(96, 80) == "dense"
    assert F.choose_cuda_kernel(256, 1000) == "sorted"
