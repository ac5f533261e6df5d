"""Fused GPU kernel of the ranking loss: one Triton program per sample.

The torch kernels of :mod:`rmlc.losses.functional` issue 30 to 50 operations per call. On a
GPU each costs a launch, a few microseconds of host time whatever its size, so at the usual
batch shapes (96 images, 80 labels) the loss cost as much host time as a tenth of a
ResNet-18 training step. This kernel computes each sample's loss and gradient in one launch,
the same algorithm as the fused CPU kernel (:mod:`rmlc.losses.fused`):

* the margin term ``kappa sum_j P(1 - y_j f_j)`` and its gradient, over the whole row;
* for each positive ``j`` in turn (found by a min-reduction, so the loop runs once per
  positive, not once per label): the violator count ``v_j``, the rank weight ``L(r_j)``
  read from the table of :func:`rmlc.losses.ranks.rank_weight_table`, and one more pass
  adding the penalties ``P(1 - f_j + f_k)`` and slopes of the negatives ``k``.

A row of up to :data:`MAX_LABELS` labels is held in registers; sums are taken in float32
(float64 for float64 logits); half-precision logits are read as they are, without a cast.

Sampled ranks use one uniform number ``U`` per label, drawn by torch (so ``generator`` keeps
its meaning) and read at the positives: the number of draws ``q`` until the first of ``v``
violators among ``n`` negatives is the smallest ``t`` with ``P(q > t) < 1 - U``, as in
:func:`rmlc.losses.fused.draws_by_inversion`. Scanning ``t`` upwards takes about
``n / (v + 1)`` serial steps; a binary search over ``t``, with
``P(q > t) = prod_{i < v} (n - t - i) / (n - i)``, about ``v log2 n``. The kernel takes the
shorter, so no positive costs more than about ``sqrt(n log2 n)`` steps.

No host-device synchronisation: a call is ``torch.rand`` (sampled ranks) and the kernel. A
sample with a non-finite score gets a NaN loss and gradient row. Without a GPU the same
kernel runs in Triton's interpreter (:func:`interpreted`), which is how the test suite
checks it on CPU.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING

import torch

from rmlc.losses.ranks import rank_weight_table
from rmlc.losses.terms import RankingTerms

try:
    import triton
    import triton.language as tl
except (ImportError, OSError, RuntimeError) as error:  # ships with torch's CUDA wheels on
    triton = None  # Linux; without it, or with a broken install, the torch kernels run
    _IMPORT_ERROR = f"{type(error).__name__}: {error}"
else:
    _IMPORT_ERROR = None

if TYPE_CHECKING:
    from triton.runtime.jit import KernelInterface

__all__ = [
    "MAX_LABELS",
    "available",
    "fused_triton_kernel",
    "interpreted",
    "supports",
    "warn_unavailable",
]

# Labels per row the kernel holds in registers; beyond, the torch kernels run.
MAX_LABELS = 16384
# The oldest NVIDIA architecture Triton compiles for (Volta), as for torch.compile.
_MIN_CAPABILITY = (7, 0)
# How the kernel weighs a positive: by sampled draws, by the exact rank, by a given rank.
_SAMPLED, _EXACT, _GIVEN = 0, 1, 2


def available() -> bool:
    """Whether Triton is importable (it is with torch's CUDA wheels on Linux)."""
    return triton is not None


@functools.cache
def warn_unavailable() -> None:
    """Say once that the losses on a GPU run without Triton, and at what cost."""
    warnings.warn(
        f"Triton could not be imported ({_IMPORT_ERROR}): the RMLC and WARP losses on CUDA "
        "run their torch kernels (dense or sorted) instead, about 2-3x slower "
        "(benchmarks/results/losses-cuda.md)",
        RuntimeWarning,
        stacklevel=3,
    )


@functools.lru_cache(maxsize=16)
def supports(device: torch.device) -> bool:
    """Whether the kernel runs on ``device``: Triton importable, and a CUDA device of
    compute capability 7.0 or newer (or any ROCm device)."""
    if triton is None or device.type != "cuda":
        return False
    if torch.version.hip is not None:
        return True
    return torch.cuda.get_device_capability(device) >= _MIN_CAPABILITY


if triton is not None:
    SAMPLED_MODE: tl.constexpr = tl.constexpr(_SAMPLED)
    EXACT_MODE: tl.constexpr = tl.constexpr(_EXACT)

    @triton.jit
    def _ranking_kernel(
        f_ptr,
        positive_ptr,
        known_ptr,
        uniform_ptr,
        given_ptr,
        table_ptr,
        constants_ptr,
        loss_ptr,
        grad_ptr,
        m,
        MODE: tl.constexpr,
        HAS_KNOWN: tl.constexpr,
        ACC: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        """Loss and gradient of row ``program_id``.

        All tensors are contiguous. ``f_ptr``: ``(N, m)`` scores, any float dtype;
        ``positive_ptr``: ``(N, m)``, nonzero at positives, any dtype; ``known_ptr``:
        ``(N, m)`` bool, read when ``HAS_KNOWN`` (an unknown entry is neither a positive
        nor a negative, and has no margin term); ``uniform_ptr``:
        ``(N, m)`` uniforms (sampled mode); ``given_ptr``: ``(N, m)`` int64 ranks (given
        mode); ``table_ptr``: ``(m + 1,)`` weights ``L`` indexed by the draws (sampled) or
        the rank (exact, given); ``constants_ptr``: ``(cap, soft, kappa, balance)`` with
        ``cap = 1 - s``, ``soft = 1 - beta`` and ``balance`` 1 for the balanced margin;
        outputs ``loss_ptr`` ``(N,)`` and ``grad_ptr`` ``(N, m)``. Float tensors other
        than ``f`` are in ``ACC``, the compute dtype; ``BLOCK`` is ``m`` rounded up to a
        power of two.
        """
        row = tl.program_id(0).to(tl.int64)
        labels = tl.arange(0, BLOCK)
        valid = labels < m
        offsets = row * m + labels
        f = tl.load(f_ptr + offsets, mask=valid, other=0.0).to(ACC)
        if HAS_KNOWN:
            known = (tl.load(known_ptr + offsets, mask=valid, other=0) != 0) & valid
        else:
            known = valid
        is_positive = (tl.load(positive_ptr + offsets, mask=valid, other=0) != 0) & known
        is_negative = known & (is_positive == 0)
        cap = tl.load(constants_ptr)
        soft = tl.load(constants_ptr + 1)
        kappa = tl.load(constants_ptr + 2)
        balance = tl.load(constants_ptr + 3)
        one = tl.full((), 1.0, ACC)
        non_finite = tl.sum((valid & ((f != f) | (tl.abs(f) == float("inf")))).to(tl.int32))
        negatives = tl.sum(is_negative.to(tl.int32))
        positives = tl.sum(is_positive.to(tl.int32))

        # Margin term: the penalty of u = 1 - y f, label by label, weighted alike or (balance)
        # m / (2 |C+|) on positives and m / (2 |C-|) on negatives.
        half = (positives + negatives).to(ACC) * 0.5  # m / 2
        balanced = tl.where(
            is_positive,
            half / tl.maximum(positives, 1).to(ACC),
            half / tl.maximum(negatives, 1).to(ACC),
        )
        weight = kappa * tl.where(balance != 0.0, balanced, one)
        sign = tl.where(is_positive, one, -one)
        u = one - sign * f
        penalty = tl.minimum(tl.maximum(u, 0.0), cap) + soft * tl.maximum(u - cap, 0.0)
        slope = ((u > 0.0) & (u < cap)).to(ACC) + soft * (u >= cap).to(ACC)
        total = tl.sum(tl.where(known, weight * penalty, 0.0))
        grad = tl.where(known, -weight * sign * slope, 0.0)

        # Ranking term, one positive at a time.
        negative_scores = tl.where(is_negative, f, -float("inf"))
        j = tl.min(tl.where(is_positive, labels, BLOCK))
        while j < BLOCK:
            threshold = tl.sum(tl.where(labels == j, f, 0.0)) - one
            violators = tl.sum((negative_scores > threshold).to(tl.int32))
            if MODE == SAMPLED_MODE:  # q: the smallest t with P(q > t) < 1 - U
                target = 1.0 - tl.load(uniform_ptr + row * m + j).to(tl.float64)
                free = negatives - violators
                draws = tl.full((), 1, tl.int32)
                scan_steps = (negatives + 1).to(tl.float32) / (violators + 1).to(tl.float32)
                search_steps = violators.to(tl.float32) * tl.log2((negatives + 1).to(tl.float32))
                if (violators > 0) & (search_steps < scan_steps):  # binary search over t
                    high = free + 1  # P(q > n - v + 1) = 0
                    while draws < high:
                        middle = (draws + high) // 2
                        survival = tl.full((), 1.0, tl.float64)
                        for i in range(0, violators):  # P(q > t) = C(n - t, v) / C(n, v)
                            numerator = (negatives - middle - i).to(tl.float64)
                            survival *= numerator / (negatives - i).to(tl.float64)
                        below = survival < target
                        high = tl.where(below, middle, high)
                        draws = tl.where(below, draws, middle + 1)
                else:  # scan t upwards: P(q > t) = prod_{a < t} (n - v - a) / (n - a)
                    survival = tl.where(
                        violators > 0,
                        free.to(tl.float64) / tl.maximum(negatives, 1).to(tl.float64),
                        0.0,
                    )
                    while survival >= target:
                        numerator = (free - draws).to(tl.float64)
                        survival = survival * (numerator / (negatives - draws).to(tl.float64))
                        draws += 1
                index = tl.where(violators > 0, draws, 0)
            elif MODE == EXACT_MODE:  # r = v
                index = violators
            else:  # a given rank, read where something violates
                given = tl.load(given_ptr + row * m + j)
                index = tl.where(violators > 0, tl.minimum(tl.maximum(given, 0), m), 0)
            weight = tl.load(table_ptr + index).to(ACC)
            pair_u = negative_scores - threshold  # -inf at positives: no penalty, no slope
            pair_penalty = tl.minimum(tl.maximum(pair_u, 0.0), cap) + soft * tl.maximum(
                pair_u - cap, 0.0
            )
            pair_slope = ((pair_u > 0.0) & (pair_u < cap)).to(ACC) + soft * (pair_u >= cap).to(ACC)
            total += weight * tl.sum(pair_penalty)
            grad += weight * pair_slope
            grad = tl.where(labels == j, grad - weight * tl.sum(pair_slope), grad)
            j = tl.min(tl.where(is_positive & (labels > j), labels, BLOCK))

        total = tl.where(non_finite > 0, float("nan"), total)
        grad = tl.where(non_finite > 0, float("nan"), grad)
        tl.store(loss_ptr + row, total)
        tl.store(grad_ptr + offsets, grad, mask=valid)


@functools.lru_cache(maxsize=64)
def _constants(
    s: float, beta: float, kappa: float, balance: bool, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``(1 - s, 1 - beta, kappa, balance)`` on the device, made once per loss (runtime
    scalars would reach the kernel in float32, constants would compile a kernel per value)."""
    return torch.tensor([1.0 - s, 1.0 - beta, kappa, float(balance)], dtype=dtype, device=device)


def interpreted() -> KernelInterface:
    """The kernel as Triton's interpreter runs it, on CPU tensors (slow; for tests).

    Triton decides at import whether it interprets: ``TRITON_INTERPRET=1`` must be set
    before ``triton`` is first imported (the test suite does so on machines without a GPU).
    """
    if triton is None:
        raise ImportError("the fused GPU kernel needs triton: pip install triton")
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(_ranking_kernel, InterpretedFunction):
        raise RuntimeError("Triton's interpreter is off: set TRITON_INTERPRET=1 before import")
    return _ranking_kernel


def _check_inputs(
    f: torch.Tensor, positive: torch.Tensor, rank: object, known: torch.Tensor | None
) -> None:
    """Shapes and devices, which the kernel would otherwise read past or fault on."""
    if f.dim() != 2:
        raise ValueError(f"logits must have shape (N, m), got shape {tuple(f.shape)}")
    if f.shape[1] > MAX_LABELS:
        raise ValueError(
            f"the fused GPU kernel holds at most {MAX_LABELS} labels per row, got "
            f"{f.shape[1]}; use kernel='sorted' or 'dense'"
        )
    named = {"positive": positive} | ({"rank": rank} if isinstance(rank, torch.Tensor) else {})
    named |= {"known": known} if known is not None else {}
    for name, tensor in named.items():
        if tensor.shape != f.shape:
            raise ValueError(
                f"{name} shape {tuple(tensor.shape)} does not match logits shape {tuple(f.shape)}"
            )
        if tensor.device != f.device:
            raise ValueError(f"{name} is on {tensor.device} but logits on {f.device}")


def fused_triton_kernel(
    f: torch.Tensor,
    positive: torch.Tensor,
    terms: RankingTerms,
    launcher: KernelInterface | None = None,
    known: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranking and margin terms with their gradient, one launch for the batch (GPU).

    Args:
        f: ``(N, m)`` scores of any floating dtype on a GPU, ``m <= MAX_LABELS``; float64
            is computed in float64, the others in float32.
        positive: ``(N, m)``, nonzero at positive labels (bool or numbers of any dtype).
        terms: what to compute (the margin term included here).
        launcher: the compiled kernel by default; :func:`interpreted` runs on CPU tensors.
        known: optional ``(N, m)`` bool mask of the known entries (None: all known).

    Returns:
        ``(per_sample (N,), grad (N, m))`` in the compute dtype, with
        ``grad[i] = d per_sample[i] / d f[i]``.
    """
    if triton is None:
        raise ImportError("kernel='fused' on a GPU needs triton: pip install triton")
    if launcher is None and f.device.type != "cuda":
        raise ValueError(f"the fused GPU kernel runs on CUDA; the logits are on {f.device}")
    rank, rounding = terms.rank, terms.rounding
    _check_inputs(f, positive, rank, known)
    n_rows, m = f.shape
    compute = torch.float64 if f.dtype == torch.float64 else torch.float32
    f, positive = f.contiguous(), positive.contiguous()
    known_rows = positive if known is None else known.contiguous()  # read if given
    per_sample = torch.empty(n_rows, dtype=compute, device=f.device)
    grad = torch.empty(n_rows, m, dtype=compute, device=f.device)
    uniforms = given = per_sample  # placeholders for the pointers a mode does not read
    if isinstance(rank, torch.Tensor):
        mode, given = _GIVEN, rank.to(torch.int64).contiguous()
        table = rank_weight_table(m, "exact", rounding, f.device, compute)
    elif rank == "exact":
        mode, table = _EXACT, rank_weight_table(m, "exact", rounding, f.device, compute)
    else:
        mode, table = _SAMPLED, rank_weight_table(m, "sampled", rounding, f.device, compute)
        uniforms = torch.rand(n_rows, m, dtype=compute, device=f.device, generator=terms.generator)
    constants = _constants(
        float(terms.s),
        float(terms.beta),
        float(terms.kappa),
        bool(terms.balance_margin),
        f.device,
        compute,
    )
    block = max(16, triton.next_power_of_2(m))

    def launch(kernel: KernelInterface) -> None:
        kernel[(n_rows,)](
            f,
            positive,
            known_rows,
            uniforms,
            given,
            table,
            constants,
            per_sample,
            grad,
            m,
            MODE=mode,
            HAS_KNOWN=known is not None,
            ACC=tl.float64 if compute == torch.float64 else tl.float32,
            BLOCK=block,
            num_warps=min(max(block // 256, 1), 16),
        )

    if launcher is not None:
        launch(launcher)
    else:
        with torch.cuda.device(f.device):  # Triton launches on the current device
            launch(_ranking_kernel)
    return per_sample, grad
