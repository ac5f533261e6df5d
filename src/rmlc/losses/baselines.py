"""Baseline losses with the same call signature as :class:`~rmlc.losses.RMLCLoss`."""

from __future__ import annotations

import torch

from rmlc.losses import functional as F
from rmlc.losses.base import MultiLabelLoss

__all__ = ["AsymmetricLoss", "BCELoss", "SoftmaxLoss"]


class BCELoss(MultiLabelLoss):
    """Binary relevance: an independent logistic loss per label, summed over labels."""

    def per_sample(self, logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        return F.bce_per_sample(logits, positive)


class SoftmaxLoss(MultiLabelLoss):
    """Softmax cross-entropy against the target vector normalised to sum 1.

    The usual multi-label softmax (Mahajan et al. 2018); for one positive per sample it is
    the ordinary softmax classifier. Samples without positives contribute 0.
    """

    def per_sample(self, logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        return F.softmax_per_sample(logits, positive)


class AsymmetricLoss(MultiLabelLoss):
    """ASL (Ridnik et al., ICCV 2021) with the defaults of the authors' ``AsymmetricLoss``.

    Args:
        gamma_neg: focusing exponent of negatives (4).
        gamma_pos: focusing exponent of positives (1).
        clip: probability margin shifted onto negatives (0.05).
        eps: floor of the probabilities inside the logarithm.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        gamma_neg: float = 4.0,
        gamma_pos: float = 1.0,
        clip: float = 0.05,
        eps: float = 1e-8,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction)
        if gamma_neg < 0 or gamma_pos < 0:
            raise ValueError(
                f"gamma_neg and gamma_pos must be >= 0, got {gamma_neg} and {gamma_pos}"
            )
        if not 0.0 <= clip < 1.0:
            raise ValueError(f"clip must lie in [0, 1), got clip={clip}")
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps

    def per_sample(self, logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        return F.asymmetric_per_sample(
            logits,
            positive,
            gamma_neg=self.gamma_neg,
            gamma_pos=self.gamma_pos,
            clip=self.clip,
            eps=self.eps,
        )
