"""The losses on CUDA give what they give on the CPU (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from rmlc.losses import AsymmetricLoss, BCELoss, RMLCLoss, SoftmaxLoss, WARPLoss
from rmlc.losses.terms import RankingTerms

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("kernel", ["fused", "pairs", "sorted", "dense"])
@pytest.mark.parametrize(("n", "m", "density"), [(96, 80, 0.04), (256, 1000, 0.01), (8, 3, 0.5)])
def test_exact_losses_and_gradients_match_cpu(kernel: str, n: int, m: int, density: float):
    generator = torch.Generator().manual_seed(n + m)
    logits = torch.randn(n, m, generator=generator, dtype=torch.float64) * 2
    targets = (torch.rand(n, m, generator=generator) < density).double()
    weights = torch.rand(n, generator=generator, dtype=torch.float64)
    for loss in (
        RMLCLoss.paper(rank="exact", kernel=kernel),
        WARPLoss(rank="exact", kernel=kernel),
        RMLCLoss.paper(rank="exact", kernel=kernel, ramp_beta=0.9, rounding="round"),
    ):
        results = []
        for device in ("cpu", "cuda"):
            leaf = logits.detach().clone().to(device).requires_grad_(True)
            value = loss(leaf, targets.to(device), weights.to(device))
            value.backward()
            results.append((value.detach().cpu(), leaf.grad.cpu()))
        torch.testing.assert_close(results[1][0], results[0][0])
        torch.testing.assert_close(results[1][1], results[0][1])


def test_baselines_match_cpu() -> None:
    logits = torch.randn(32, 20, dtype=torch.float64)
    targets = (torch.rand(32, 20) < 0.2).double()
    for loss in (BCELoss(), SoftmaxLoss(), AsymmetricLoss()):
        torch.testing.assert_close(loss(logits.cuda(), targets.cuda()).cpu(), loss(logits, targets))


def test_sampled_ranks_on_cuda_are_reproducible_and_unbiased() -> None:
    """Seeded draws repeat; averaged over draws, the GPU's sampled loss equals the CPU's."""
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(64, 81, generator=generator, dtype=torch.float64) * 2
    targets = (torch.rand(64, 81, generator=generator) < 0.05).double()
    gpu_logits, gpu_targets = logits.cuda(), targets.cuda()
    first = RMLCLoss.paper(generator=torch.Generator("cuda").manual_seed(1))(
        gpu_logits, gpu_targets
    )
    second = RMLCLoss.paper(generator=torch.Generator("cuda").manual_seed(1))(
        gpu_logits, gpu_targets
    )
    assert first.item() == second.item()
    draws = 2000
    gpu_loss = RMLCLoss.paper(generator=torch.Generator("cuda").manual_seed(3))
    cpu_loss = RMLCLoss.paper(generator=torch.Generator().manual_seed(3))
    gpu = torch.stack([gpu_loss(gpu_logits, gpu_targets) for _ in range(draws)]).cpu()
    cpu = torch.stack([cpu_loss(logits, targets) for _ in range(draws)])
    stderr = torch.hypot(gpu.std(), cpu.std()) / draws**0.5
    assert abs(gpu.mean() - cpu.mean()) < 5 * stderr
    assert gpu.std() > 0  # the ranks really are drawn


@pytest.mark.parametrize("rank", ["exact", "sampled"])
def test_fused_kernel_at_its_largest_row(rank: str) -> None:
    """16,384 labels in registers: exact losses and gradients as on CPU, sampled finite."""
    from rmlc.losses.fused_triton import MAX_LABELS

    generator = torch.Generator().manual_seed(6)
    logits = torch.randn(3, MAX_LABELS, generator=generator, dtype=torch.float64) * 3
    targets = (torch.rand(3, MAX_LABELS, generator=generator) < 0.002).double()
    loss = RMLCLoss.paper(rank=rank, reduction="none", kernel="fused")
    leaf = logits.cuda().requires_grad_(True)
    value = loss(leaf, targets.cuda())
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(leaf.grad).all()
    if rank == "exact":
        cpu_leaf = logits.clone().requires_grad_(True)
        cpu_value = loss(cpu_leaf, targets)
        cpu_value.sum().backward()
        torch.testing.assert_close(value.detach().cpu(), cpu_value.detach())
        torch.testing.assert_close(leaf.grad.cpu(), cpu_leaf.grad)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="one GPU")
def test_fused_kernel_on_a_second_gpu() -> None:
    logits = torch.randn(8, 40, dtype=torch.float64) * 2
    targets = (torch.rand(8, 40) < 0.2).double()
    loss = RMLCLoss.paper(rank="exact", reduction="none")
    with torch.cuda.device(0):
        on_second = loss(logits.to("cuda:1"), targets.to("cuda:1"))
    torch.testing.assert_close(on_second.cpu(), loss(logits, targets))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_half_precision(dtype: torch.dtype) -> None:
    model = torch.nn.Linear(16, 80).cuda()
    inputs = torch.randn(96, 16, device="cuda")
    targets = (torch.rand(96, 80, device="cuda") < 0.04).float()
    with torch.autocast("cuda", dtype=dtype):
        logits = model(inputs)
        assert logits.dtype == dtype
        value = RMLCLoss.paper()(logits, targets)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(model.weight.grad).all()


def test_cuda_auto_matches_the_fused_cpu_kernel() -> None:
    """The default kernels of each device (Triton and numba fused kernels) agree."""
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(96, 80, generator=generator, dtype=torch.float64) * 2
    targets = (torch.rand(96, 80, generator=generator) < 0.04).double()
    loss = RMLCLoss.paper(rank="exact", reduction="none")
    torch.testing.assert_close(loss(logits.cuda(), targets.cuda()).cpu(), loss(logits, targets))


def test_fused_numba_kernel_refuses_cuda_tensors() -> None:
    from rmlc.losses.fused import fused_kernel

    logits, targets = torch.randn(4, 6, device="cuda"), torch.zeros(4, 6, device="cuda")
    with pytest.raises(ValueError, match="kernel='fused' runs on CPU"):
        fused_kernel(logits, targets, RankingTerms(-0.8, 1.0, 5.0, "sampled", "floor", None))


@pytest.mark.parametrize("weighted", [False, True])
def test_default_loss_never_waits_for_the_gpu(weighted: bool) -> None:
    """Forward and backward of the trainer's loss call make no host-device synchronisation."""
    logits = torch.randn(96, 80, device="cuda", requires_grad=True)
    targets = (torch.rand(96, 80, device="cuda") < 0.04).float()
    weights = torch.rand(96, device="cuda") if weighted else None
    loss = RMLCLoss.paper()
    loss.check_values = False
    loss(logits, targets, weights).backward()  # builds the cached tables first
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss(logits, targets, weights).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(logits.grad).all()
