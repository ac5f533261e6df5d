"""The fused GPU (Triton) kernel against the literal loop, its sampler and its inputs.

Without a GPU, Triton's interpreter runs the kernel on CPU tensors (tests/conftest.py
switches it on); with one, the compiled kernel runs on CUDA. Either way the kernel's
results are checked through the loss modules, by routing ``kernel="fused"`` to it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import RMLCLoss, WARPLoss, fused_triton
from rmlc.losses import functional as F
from rmlc.losses import ranks as R
from rmlc.losses.terms import RankingTerms
from tests.losses import test_ranking_reference as ranking_reference

pytestmark = pytest.mark.skipif(not fused_triton.available(), reason="triton is not installed")


def kernel_and_device() -> tuple[object, str]:
    """The interpreted kernel on CPU, or the compiled one on CUDA."""
    if torch.cuda.is_available():
        return None, "cuda"
    return fused_triton.interpreted(), "cpu"


def run_triton(f, positive, terms, positive_count=None, known=None):
    """``fused_kernel``'s signature, computed by the Triton kernel (results on CPU)."""
    kernel, device = kernel_and_device()
    if isinstance(terms.rank, torch.Tensor):
        terms = dataclasses.replace(terms, rank=terms.rank.to(device))
    known = None if known is None else known.to(device)
    per_sample, grad = fused_triton.fused_triton_kernel(
        f.to(device), positive.to(device), terms, kernel, known=known
    )
    return per_sample.cpu(), grad.cpu()


@pytest.fixture
def triton_as_fused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kernel="fused"`` on CPU tensors runs the Triton kernel instead of numba's."""
    monkeypatch.setattr(F, "fused_kernel", run_triton)


def _interpreted_case(seed: int):
    """Cases of 200 or more labels take Triton's interpreter up to 90 s on 2 busy cores:
    marked slow, so ``-m "not slow"`` leaves them out; the default command runs them."""
    many_labels = ranking_reference.random_case(seed)["logits"].shape[1] >= 200
    if many_labels and not torch.cuda.is_available():
        return pytest.param(seed, marks=pytest.mark.slow)
    return seed


@pytest.mark.parametrize("seed", [_interpreted_case(seed) for seed in range(0, 240, 3)])
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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("n", "m", "density"), [(40, 12, 0.3), (16, 81, 0.05), (4, 1000, 0.01)])
def test_sampled_draws_invert_the_same_uniforms(
    n: int, m: int, density: float, dtype: torch.dtype
) -> None:
    """The kernel's draws are ``draws_by_inversion`` of its uniforms: one per label, in the
    order ``torch.rand((N, m))`` gives them, read at the positives."""
    draws_by_inversion = pytest.importorskip("rmlc.losses.fused").draws_by_inversion
    kernel, device = kernel_and_device()
    generator = torch.Generator(device).manual_seed(n + m)
    logits = torch.randn(n, m, dtype=dtype, device=device) * 2
    positive = (torch.rand(n, m, device=device) < density).to(dtype)
    positive[:, 0] = 1  # every row has a positive
    state = generator.get_state()
    sampled, _ = fused_triton.fused_triton_kernel(
        logits, positive, RankingTerms(-0.8, 1.0, 5.0, "sampled", "floor", generator), kernel
    )
    generator.set_state(state)
    uniforms = torch.rand(n, m, dtype=dtype, device=device, generator=generator)

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
    tolerance = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(sampled.cpu(), expected, rtol=tolerance, atol=tolerance)
    assert len(set(ranks[mask.cpu() & (violators.cpu() > 0)].tolist())) > 1


def test_sampled_ranks_follow_the_generator() -> None:
    kernel, device = kernel_and_device()
    logits = torch.randn(8, 30, device=device) * 2
    positive = (torch.rand(8, 30, device=device) < 0.2).float()

    def loss(seed: int) -> torch.Tensor:
        generator = torch.Generator(device).manual_seed(seed)
        return fused_triton.fused_triton_kernel(
            logits, positive, RankingTerms(-0.8, 1.0, 5.0, "sampled", "floor", generator), kernel
        )[0]

    assert torch.equal(loss(1), loss(1))
    assert not torch.equal(loss(1), loss(2))


def test_non_finite_scores_give_nan_for_their_sample_only(triton_as_fused: None) -> None:
    logits = torch.randn(4, 6, dtype=torch.float64)
    targets = torch.zeros(4, 6)
    targets[:, 0] = 1
    logits[1, 3], logits[2, 0] = float("nan"), float("-inf")
    leaf = logits.clone().requires_grad_(True)
    loss = RMLCLoss.paper(rank="exact", reduction="none", kernel="fused")(leaf, targets)
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
        logits, mask.float(), RankingTerms(-0.8, 1.0, 5.0, "exact", "floor", None), kernel
    )
    for positive in (mask, mask.to(torch.uint8), mask.double()):
        got = fused_triton.fused_triton_kernel(
            logits, positive, RankingTerms(-0.8, 1.0, 5.0, "exact", "floor", None), kernel
        )
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    half = logits.half()
    got = fused_triton.fused_triton_kernel(
        half, mask, RankingTerms(-0.8, 1.0, 5.0, "exact", "floor", None), kernel
    )
    reference_value = fused_triton.fused_triton_kernel(
        half.float(), mask, RankingTerms(-0.8, 1.0, 5.0, "exact", "floor", None), kernel
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
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            RankingTerms(-0.8, 1.0, 5.0, "exact", "floor", None),
        )
    kernel, device = kernel_and_device()
    too_many = fused_triton.MAX_LABELS + 1
    with pytest.raises(ValueError, match=f"at most {fused_triton.MAX_LABELS} labels"):
        fused_triton.fused_triton_kernel(
            torch.zeros(1, too_many, device=device),
            torch.zeros(1, too_many, device=device),
            RankingTerms(-0.8, 1.0, 5.0, "exact", "floor", None),
            kernel,
        )


def test_cuda_kernel_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(fused_triton, "supports", lambda device: True)
    assert F.choose_cuda_kernel(96, 80, gpu) == "fused"
    assert F.choose_cuda_kernel(4, fused_triton.MAX_LABELS + 1, gpu) == "sorted"
    monkeypatch.setattr(fused_triton, "supports", lambda device: False)
    assert F.choose_cuda_kernel(96, 80, gpu) == "dense"
    assert F.choose_cuda_kernel(256, 1000, gpu) == "sorted"


def test_supported_devices() -> None:
    assert not fused_triton.supports(torch.device("cpu"))
    if torch.cuda.is_available():
        capability = torch.cuda.get_device_capability()
        assert fused_triton.supports(torch.device("cuda", 0)) == (capability >= (7, 0))


@pytest.mark.parametrize("rank", ["exact", "given"])
def test_float32_matches_the_numba_kernel(rank: str) -> None:
    """The training dtype: float32 sums against numba's float64 sums of the same scores."""
    fused_kernel = pytest.importorskip("rmlc.losses.fused").fused_kernel
    kernel, device = kernel_and_device()
    generator = torch.Generator().manual_seed(11)
    logits = torch.randn(12, 200, generator=generator) * 2
    positive = (torch.rand(12, 200, generator=generator) < 0.1).float()
    given = torch.randint(-1, 203, (12, 200), generator=generator) if rank == "given" else rank
    expected = fused_kernel(
        logits.double(), positive.double(), RankingTerms(-0.7, 1.0, 3.0, given, "floor", None)
    )
    got = fused_triton.fused_triton_kernel(
        logits.to(device),
        positive.to(device),
        RankingTerms(-0.7, 1.0, 3.0, given.to(device) if rank == "given" else given, "floor", None),
        kernel,
    )
    assert got[0].dtype == torch.float32 and got[1].dtype == torch.float32
    torch.testing.assert_close(got[0].cpu().double(), expected[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[1].cpu().double(), expected[1], rtol=1e-5, atol=1e-4)


def test_binary_search_and_scan_give_the_inversion_draws() -> None:
    """Few violators among many negatives take the binary search, many take the scan:
    both give the draws of scanning the exact distribution (draws_by_inversion)."""
    draws_by_inversion = pytest.importorskip("rmlc.losses.fused").draws_by_inversion
    kernel, device = kernel_and_device()
    n, m = 48, 600
    generator = torch.Generator().manual_seed(4)
    logits = torch.full((n, m), -50.0, dtype=torch.float64)
    positive = torch.zeros(n, m, dtype=torch.float64)
    positive[:, 0] = 1
    logits[:, 0] = 10.0
    violators = torch.tensor([1, 2, 3, 5, 8, 40, 150, 500] * (n // 8))
    for row, count in enumerate(violators.tolist()):  # scores just above 10 - 1
        spread = torch.rand(count, generator=generator, dtype=torch.float64)
        logits[row, 1 : 1 + count] = 9.5 - 0.4 * spread
    state_generator = torch.Generator(device).manual_seed(9)
    state = state_generator.get_state()
    sampled, _ = fused_triton.fused_triton_kernel(
        logits.to(device),
        positive.to(device),
        RankingTerms(-0.8, 1.0, 0.0, "sampled", "floor", state_generator),
        kernel,
    )
    state_generator.set_state(state)
    uniforms = torch.rand(n, m, dtype=torch.float64, device=device, generator=state_generator)
    draws = draws_by_inversion(violators.numpy(), np.full(n, m - 1), uniforms[:, 0].cpu().numpy())
    ranks = torch.zeros(n, m, dtype=torch.int64)
    ranks[:, 0] = R.ranks_from_draws(torch.from_numpy(draws), m, "floor")
    expected = F.ranking_loss(logits, positive.bool(), kappa=0.0, rank=ranks, kernel="pairs")
    torch.testing.assert_close(sampled.cpu(), expected, rtol=1e-12, atol=1e-12)
    assert (torch.from_numpy(draws)[violators <= 3] > 20).any()  # long scans were needed


def test_shapes_and_devices_are_checked() -> None:
    kernel, device = kernel_and_device()
    logits, positive = torch.zeros(3, 5, device=device), torch.zeros(3, 5, device=device)

    def call(positive: torch.Tensor, rank: str | torch.Tensor) -> None:
        fused_triton.fused_triton_kernel(
            logits, positive, RankingTerms(-0.8, 1.0, 5.0, rank, "floor", None), kernel
        )

    with pytest.raises(ValueError, match=r"positive shape \(3, 4\) does not match"):
        call(positive[:, :4], "exact")
    with pytest.raises(ValueError, match=r"rank shape \(5, 3\) does not match"):
        call(positive, torch.zeros(5, 3, dtype=torch.int64, device=device))
    if device == "cuda":
        with pytest.raises(ValueError, match="rank is on cpu but logits on cuda"):
            call(positive, torch.zeros(3, 5, dtype=torch.int64))


@pytest.mark.parametrize("beta", [1.0, 0.0])
def test_balanced_margin_in_the_triton_kernel(beta: float, triton_as_fused: None) -> None:
    from tests.losses import test_remedies

    test_remedies.test_rmlc_with_balanced_margin_is_ranking_plus_balanced_margin("fused", beta)
