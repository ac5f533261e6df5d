"""Partial labels: every loss over a mask of known entries (issue 27, item 1).

Masked losses are checked against the literal loops of tests/reference.py extended with a
mask; the all-known mask must give the values and gradients of ``known=None`` bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import reference
from rmlc.losses import functional as F
from rmlc.losses import fused_triton
from rmlc.losses.registry import LOSSES, build_loss
from rmlc.losses.terms import RankingTerms

KERNELS = ["fused", "pairs", "sorted", "dense", "triton"]


@pytest.fixture
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel name for ``ranking_loss``; ``"triton"`` routes ``kernel="fused"`` on CPU
    tensors to the Triton kernel (interpreted without a GPU)."""
    if request.param != "triton":
        return request.param
    if not fused_triton.available():
        pytest.skip("triton is not installed")
    from tests.losses.test_fused_triton import run_triton

    monkeypatch.setattr(F, "fused_kernel", run_triton)
    return "fused"


def masked_case(seed: int, m: int | None = None) -> dict:
    """Random scores, labels and a mask with the corner rows: nothing known, no known
    positive, no known negative, everything known."""
    rng = np.random.default_rng(seed)
    m = m or int(rng.choice([1, 2, 5, 16, 33, 80]))
    n = int(rng.integers(4, 8))
    if rng.random() < 0.3:  # half-integer grid: ties, and scores on the breakpoints
        logits = np.round(rng.normal(0.0, 2.0, (n, m)) * 2) / 2
    else:
        logits = rng.normal(0.0, float(rng.choice([0.5, 2.0])), (n, m))
    positive = rng.random((n, m)) < float(rng.choice([0.1, 0.3, 0.6]))
    known = rng.random((n, m)) < float(rng.choice([0.3, 0.7, 0.9]))
    known[0] = False  # nothing known
    known[1] = ~positive[1]  # no known positive
    known[2] = positive[2]  # no known negative
    known[3] = True
    return {"logits": logits, "positive": positive, "known": known}


def literal_ranking(case: dict, terms: RankingTerms) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss and subgradient (sum reduction) of the reference, exact ranks."""
    hinge_only = terms.beta == 0.0 and terms.s == 0.0 and terms.kappa == 0.0
    common = {"s": terms.s, "kappa": terms.kappa, "hinge_only": hinge_only}
    targets, known = case["positive"].astype(float), case["known"]
    per_sample, _, ranks = reference.literal_loss(
        case["logits"], targets, rank="exact", reduction="sum", known=known, **common
    )
    grad = reference.literal_subgradient(
        case["logits"], targets, ranks, reduction="sum", known=known, **common
    )
    return np.array(per_sample), np.array(grad)


def run_kernel(case: dict, terms: RankingTerms, kernel: str):
    logits = torch.tensor(case["logits"], requires_grad=True)
    known = torch.tensor(case["known"])
    loss = F.ranking_loss(logits, torch.tensor(case["positive"]), terms, kernel=kernel, known=known)
    loss.sum().backward()
    return loss.detach().numpy(), logits.grad.numpy()


@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
@pytest.mark.parametrize("seed", range(40))
def test_masked_ranking_loss_matches_the_literal_loop(seed: int, kernel: str) -> None:
    case = masked_case(seed)
    terms = [RankingTerms(rank="exact"), RankingTerms(rank="exact", kappa=0.0),
             RankingTerms.warp("exact")][seed % 3]  # fmt: skip
    value, grad = run_kernel(case, terms, kernel)
    expected_value, expected_grad = literal_ranking(case, terms)
    np.testing.assert_allclose(value, expected_value, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-9)
    assert np.all(grad[~case["known"]] == 0.0)  # unknown entries: no gradient
    assert value[0] == 0.0  # nothing known: nothing to pay


@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
@pytest.mark.parametrize("rank", ["exact", "sampled"])
def test_every_kernel_gives_the_same_bits_with_the_all_known_mask(kernel: str, rank) -> None:
    case = masked_case(3, m=80)
    case["known"][:] = True
    for balance in (False, True):
        values = []
        for known in (None, torch.ones(case["known"].shape, dtype=torch.bool)):
            logits = torch.tensor(case["logits"], dtype=torch.float32, requires_grad=True)
            generator = torch.Generator().manual_seed(5)
            terms = RankingTerms(rank=rank, balance_margin=balance, generator=generator)
            positive = torch.tensor(case["positive"])
            value = F.ranking_loss(logits, positive, terms, kernel=kernel, known=known)
            value.sum().backward()
            values.append((value.detach(), logits.grad))
        assert torch.equal(values[0][0], values[1][0])
        assert torch.equal(values[0][1], values[1][1])


@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
@pytest.mark.parametrize("seed", range(12))
def test_masked_balanced_margin_matches_the_literal_sum(seed: int, kernel: str) -> None:
    case = masked_case(seed)
    s, kappa = -0.6, 2.0
    terms = RankingTerms(s=s, kappa=kappa, rank="exact", balance_margin=True)
    value, grad = run_kernel(case, terms, kernel)
    ranking, ranking_grad = literal_ranking(case, RankingTerms(s=s, kappa=0.0, rank="exact"))
    for i, (f, positive, known) in enumerate(zip(*case.values(), strict=True)):
        y = [1 if p else -1 for p in positive]
        margin = reference.literal_balanced_margin(f, y, s, known=known)
        assert value[i] == pytest.approx(ranking[i] + kappa * margin, rel=1e-9, abs=1e-9)
        size, count = known.sum(), (positive & known).sum()
        for j in range(len(f)):  # d/df of w_j R_s(y_j f_j): -w_j y_j on the slope
            side = count if y[j] == 1 else size - count
            slope = known[j] and s < y[j] * f[j] < 1.0
            expected = ranking_grad[i, j] - (kappa * size / (2.0 * side) * y[j] if slope else 0.0)
            assert grad[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
def test_sampled_ranks_draw_among_known_negatives_only(kernel: str) -> None:
    """Every known negative violates and no unknown one does: the first draw always finds a
    violator, so the sampled rank is ``m - 1`` whatever the random order, as the reference
    with any order says; counting the unknown negatives would make it random."""
    m = 40
    logits = torch.full((3, m), -5.0, dtype=torch.float64)
    logits[:, 0] = 1.0  # the positive
    logits[:, 1:6] = 3.0  # five known negatives above it
    positive = torch.zeros(3, m, dtype=torch.bool)
    positive[:, 0] = True
    known = torch.zeros(3, m, dtype=torch.bool)
    known[:, :6] = True
    terms = RankingTerms(rank="sampled", generator=torch.Generator().manual_seed(0))
    value = F.ranking_loss(logits, positive, terms, kernel=kernel, known=known)
    orders = {(i, 0): list(range(1, 6)) for i in range(3)}
    expected, _, ranks = reference.literal_loss(
        logits.tolist(), positive.double().tolist(), rank="sampled", orders=orders,
        known=known.tolist(), reduction="sum",
    )  # fmt: skip
    assert all(r == m - 1 for r in ranks.values())
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12)


def fresh(name: str) -> torch.nn.Module:
    """A new loss (a fresh warm-start count), LL-R past its first epoch."""
    loss = build_loss(name, reduction="none")
    if hasattr(loss, "set_epoch"):
        loss.set_epoch(20)
    return loss


def loss_and_grad(name: str, logits, targets, seed: int, **kwargs):
    x = logits.clone().requires_grad_()
    torch.manual_seed(seed)  # the sampled ranks' draws
    value = fresh(name)(x, targets, **kwargs)
    value.sum().backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(LOSSES))
def test_the_all_known_mask_gives_todays_values_bit_for_bit(name: str, dtype) -> None:
    for seed, (n, m) in enumerate([(6, 5), (96, 80), (3, 300)]):
        generator = torch.Generator().manual_seed(seed)
        logits = torch.randn(n, m, generator=generator, dtype=dtype) * 3
        targets = (torch.rand(n, m, generator=generator) < 0.2).to(dtype)
        weight = torch.rand(n, generator=generator, dtype=dtype)
        known = torch.ones(n, m, dtype=torch.bool)
        plain = loss_and_grad(name, logits, targets, seed, sample_weight=weight)
        masked = loss_and_grad(name, logits, targets, seed, sample_weight=weight, known=known)
        assert torch.equal(plain[0], masked[0]) and torch.equal(plain[1], masked[1])
        # the masked kernels themselves (the module skips them when every entry is known)
        results = []
        for mask in (None, known):
            x = logits.clone().requires_grad_()
            torch.manual_seed(seed)
            value = fresh(name).per_sample(x, targets, **({} if mask is None else {"known": mask}))
            value.sum().backward()
            results.append((value.detach(), x.grad))
        assert torch.equal(results[0][0], results[1][0])
        assert torch.equal(results[0][1], results[1][1])
        torch.testing.assert_close(results[0][0] * weight, plain[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", list(LOSSES))
def test_unknown_entries_get_no_gradient_and_do_not_matter(name: str) -> None:
    case = masked_case(7, m=20)
    logits, known = torch.tensor(case["logits"]), torch.tensor(case["known"])
    targets = torch.tensor(case["positive"], dtype=torch.float64)
    value, grad = loss_and_grad(name, logits, targets, 0, known=known)
    assert torch.all(grad[~known] == 0.0) and torch.all(torch.isfinite(value))
    assert value[0] == 0.0  # a row with nothing known
    assert torch.any(grad[known] != 0.0)
    # whatever the labels and scores of the unknown entries, the same loss
    flipped = torch.where(known, targets, 1.0 - targets)
    moved = torch.where(known, logits, logits * -7.0 + 3.0)
    other, other_grad = loss_and_grad(name, moved, flipped, 0, known=known)
    torch.testing.assert_close(other, value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(other_grad, grad, rtol=1e-12, atol=1e-12)


def literal_elementwise(name: str, f: float, y: int) -> float:
    """One entry's loss by the book (y in {0, 1})."""
    if name == "bce":
        return reference.bce(f, y)
    p = reference.sigmoid(f)  # ASL with the authors' defaults
    if y == 1:
        return -((1.0 - p) ** 1.0) * math.log(max(p, 1e-8))
    shifted = min(1.0 - p + 0.05, 1.0)
    return -((1.0 - shifted) ** 4.0) * math.log(max(shifted, 1e-8))


@pytest.mark.parametrize("seed", range(6))
def test_masked_elementwise_losses_match_the_literal_sums(seed: int) -> None:
    case = masked_case(seed)
    logits, known = torch.tensor(case["logits"]), torch.tensor(case["known"])
    targets = torch.tensor(case["positive"], dtype=torch.float64)
    rows = list(zip(case["logits"], case["positive"], case["known"], strict=True))
    for name in ("bce", "asl"):
        value = fresh(name)(logits, targets, known=known)
        for i, (f, y, sure) in enumerate(rows):
            expected = sum(literal_elementwise(name, f[j], int(y[j])) for j in np.flatnonzero(sure))
            assert float(value[i]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    value = fresh("softmax")(logits, targets, known=known)  # softmax over the known labels
    for i, (f, y, sure) in enumerate(rows):
        labels = np.flatnonzero(sure)
        positives = [j for j in labels if y[j]]
        lse = math.log(sum(math.exp(f[j]) for j in labels)) if len(labels) else 0.0
        expected = -sum(f[j] - lse for j in positives) / max(len(positives), 1)
        assert float(value[i]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    gce = fresh("gce")(logits, targets, known=known)
    expected_gce, _, _ = reference.literal_gce(
        case["logits"], case["positive"].astype(float), 0.7, reduction="none", known=case["known"]
    )
    np.testing.assert_allclose(gce.numpy(), expected_gce, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("epoch", [1, 5, 20, 200])
def test_masked_llr_rejects_among_known_negatives(epoch: int) -> None:
    case = masked_case(epoch, m=16)
    logits = torch.tensor(case["logits"], requires_grad=True)
    targets = torch.tensor(case["positive"], dtype=torch.float64)
    loss = build_loss("llr", delta_rel=0.5, reduction="sum")
    loss.set_epoch(epoch)
    value = loss(logits, targets, known=torch.tensor(case["known"]))
    value.backward()
    _, expected, expected_grad, rejected = reference.literal_llr(
        case["logits"], case["positive"].astype(float), epoch, 0.5, reduction="sum",
        known=case["known"],
    )  # fmt: skip
    assert all(case["known"][i, j] for i, j in rejected)
    assert float(value) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(logits.grad.numpy(), expected_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("known", "error", "message"),
    [
        (torch.ones(4, 5), TypeError, "known must be a bool tensor"),
        (torch.ones(4, 6, dtype=torch.bool), ValueError, r"known shape \(4, 6\)"),
        (torch.ones(5, dtype=torch.bool), ValueError, "known shape"),
        ([[True] * 5] * 4, TypeError, "known must be a torch.Tensor"),
    ],
)
@pytest.mark.parametrize("name", ["rmlc", "bce"])
def test_a_bad_mask_is_refused_with_its_name(name, known, error, message) -> None:
    with pytest.raises(error, match=message):
        build_loss(name)(torch.zeros(4, 5), torch.zeros(4, 5), known=known)


@pytest.mark.parametrize("seed", range(6))
def test_masked_margin_terms_match_the_literal_sums(seed: int) -> None:
    case = masked_case(seed)
    logits = torch.tensor(case["logits"], requires_grad=True)
    positive, known = torch.tensor(case["positive"]), torch.tensor(case["known"])
    balanced = F.balanced_margin_term(logits, positive, -0.5, known=known)
    plain = F.margin_term(logits, positive, -0.5, known=known)
    (balanced.sum() + plain.sum()).backward()
    assert torch.all(logits.grad[~known] == 0.0)
    for i, (f, y, sure) in enumerate(zip(*case.values(), strict=True)):
        signs = [1 if p else -1 for p in y]
        expected = reference.literal_balanced_margin(f, signs, -0.5, known=sure)
        assert float(balanced[i]) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        terms = zip(signs, f, sure, strict=True)
        literal = sum(reference.ramp(v * x, -0.5) for v, x, k in terms if k)
        assert float(plain[i]) == pytest.approx(literal, rel=1e-12, abs=1e-12)
