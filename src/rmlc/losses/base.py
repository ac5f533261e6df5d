"""The call contract shared by every loss:
``loss(logits, targets, sample_weight=None, *, known=None)``.

Input validation, per-sample weighting and reduction live here once; each loss module only
names its per-sample function from :mod:`rmlc.losses.functional` and its hyper-parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rmlc.checks import check_choice
from rmlc.labels import positive_indicator

__all__ = [
    "REDUCTIONS",
    "MultiLabelLoss",
    "check_known",
    "check_loss_inputs",
    "reduce_per_sample",
]

REDUCTIONS = ("mean", "sum", "none")


def check_loss_inputs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
    check_values: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check shapes, dtypes, devices and values; return the positive mask and the weights.

    Args:
        logits: ``(N, m)`` floating-point scores, ``N >= 1``, ``m >= 1``.
        targets: ``(N, m)`` in {0, 1} or {-1, +1} (or bool), on the logits' device.
        sample_weight: optional ``(N,)`` finite, non-negative weights.
        check_values: also check the values of targets and weights (needs a host sync).

    Returns:
        ``(positive, weight)``: ``(N, m)`` 0/1 indicator of positive labels (float64 for
        float64 logits, else float32) and the ``(N,)`` weights (or None).
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, m), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be non-empty, got shape {tuple(logits.shape)}")
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} does not match logits shape "
            f"{tuple(logits.shape)}"
        )
    if targets.device != logits.device:
        raise ValueError(f"targets are on {targets.device} but logits on {logits.device}")
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    if check_values:
        positive = positive_indicator(targets, dtype)
    else:  # trusted {0, 1} (or bool) targets
        positive = targets if targets.dtype == dtype else targets.to(dtype)
    if sample_weight is None:
        return positive, None
    if not isinstance(sample_weight, torch.Tensor):
        raise TypeError(f"sample_weight must be a torch.Tensor, got {type(sample_weight).__name__}")
    if sample_weight.shape != (logits.shape[0],):
        raise ValueError(
            f"sample_weight must have shape (N,) = ({logits.shape[0]},), "
            f"got {tuple(sample_weight.shape)}"
        )
    if sample_weight.device != logits.device:
        raise ValueError(
            f"sample_weight is on {sample_weight.device} but logits on {logits.device}"
        )
    if not check_values:
        return positive, sample_weight
    lowest, highest = (float(v) for v in torch.aminmax(sample_weight.detach()))
    if not (math.isfinite(lowest) and math.isfinite(highest)):
        raise ValueError("sample_weight contains NaN or inf")
    if lowest < 0:
        raise ValueError(f"sample_weight must be non-negative, found {lowest:g}")
    return positive, sample_weight


def check_known(known: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor | None:
    """Check a mask of known entries against ``(N, m)`` logits; return it (or None).

    Args:
        known: None (every entry known) or a ``(N, m)`` bool tensor on the logits' device,
            True where the entry's label is known (partial labels).
    """
    if known is None:
        return None
    if not isinstance(known, torch.Tensor):
        raise TypeError(f"known must be a torch.Tensor or None, got {type(known).__name__}")
    if known.dtype != torch.bool:
        raise TypeError(f"known must be a bool tensor (True = label known), got {known.dtype}")
    if known.shape != logits.shape:
        raise ValueError(
            f"known shape {tuple(known.shape)} does not match logits shape {tuple(logits.shape)}"
        )
    if known.device != logits.device:
        raise ValueError(f"known is on {known.device} but logits on {logits.device}")
    return known


def reduce_per_sample(
    per_sample: torch.Tensor, weight: torch.Tensor | None, reduction: str
) -> torch.Tensor:
    """Weight a ``(N,)`` per-sample loss and reduce it: ``mean`` divides by ``N``."""
    if weight is not None:
        per_sample = per_sample * weight.to(per_sample.dtype)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


class MultiLabelLoss(nn.Module):
    """Base of every rmlc loss: validates inputs, weights samples and reduces.

    Subclasses implement :meth:`per_sample`, mapping ``(N, m)`` logits and the ``(N, m)``
    0/1 indicator of positive labels to ``(N,)`` unweighted losses; with partial labels it
    is also given ``known=``, the ``(N, m)`` bool mask of known entries (a subclass whose
    ``per_sample`` takes no ``known`` works as before, and refuses a mask).

    Args:
        reduction: ``"mean"`` (``sum_i w_i loss_i / N``), ``"sum"``, or ``"none"`` for the
            ``(N,)`` weighted per-sample losses.

    Attributes:
        check_values: check target values and weights on every call (the default). Checking
            values needs the data on the host: a caller that validated its targets once, as
            the trainer does, can set it False so that a CUDA step never waits for the GPU.
            Shapes, dtypes and devices are always checked.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_choice(reduction, REDUCTIONS, "reduction")
        self.reduction = reduction
        self.check_values = True

    def per_sample(
        self, logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
        *,
        known: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of a batch.

        Args:
            logits: ``(N, m)`` scores.
            targets: ``(N, m)`` in {0, 1} or {-1, +1}; read only where ``known``.
            sample_weight: optional ``(N,)`` non-negative weights ``s_i``.
            known: optional ``(N, m)`` bool mask, True where the label is known (partial
                labels); None: every label known. Unknown entries add nothing to the loss
                and get a zero gradient (docs/losses.md, "Partial labels").
        """
        positive, weight = check_loss_inputs(logits, targets, sample_weight, self.check_values)
        known = check_known(known, logits)
        if known is not None and known.device.type == "cpu" and bool(known.numpy().all()):
            # all known: the unmasked path, bit-equal and cheaper (no host sync on CPU;
            # NumPy's all() reads a bool mask about 30x faster than torch's)
            known = None
        if known is None:
            per_sample = self.per_sample(logits, positive)
        else:
            per_sample = self.per_sample(logits, positive, known=known)
        return reduce_per_sample(per_sample, weight, self.reduction)
