"""Baseline losses with the same call signature as :class:`~rmlc.losses.RMLCLoss`.

Per-label and softmax losses (BCE, softmax, ASL), and two baselines made for noisy or
missing labels: generalized cross-entropy (GCE) and large-loss rejection (LL-R).
"""

from __future__ import annotations

import math
import numbers

import torch

from rmlc.checks import ParameterError, check_fraction, check_integer
from rmlc.losses import functional as F
from rmlc.losses.base import MultiLabelLoss

__all__ = [
    "AsymmetricLoss",
    "BCELoss",
    "GeneralizedCrossEntropy",
    "LargeLossRejection",
    "SoftmaxLoss",
]


class BCELoss(MultiLabelLoss):
    """Binary relevance: an independent logistic loss per label, summed over labels."""

    def per_sample(
        self, logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
    ) -> torch.Tensor:
        return F.bce_per_sample(logits, positive, known)


class SoftmaxLoss(MultiLabelLoss):
    """Softmax cross-entropy against the target vector normalised to sum 1.

    The usual multi-label softmax (Mahajan et al. 2018); for one positive per sample it is
    the ordinary softmax classifier. Samples without positives contribute 0.
    """

    def per_sample(
        self, logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
    ) -> torch.Tensor:
        return F.softmax_per_sample(logits, positive, known)


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

    def per_sample(
        self, logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
    ) -> torch.Tensor:
        return F.asymmetric_per_sample(
            logits,
            positive,
            gamma_neg=self.gamma_neg,
            gamma_pos=self.gamma_pos,
            clip=self.clip,
            eps=self.eps,
            known=known,
        )


class GeneralizedCrossEntropy(MultiLabelLoss):
    """GCE, generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018), per label.

    ``loss_i = sum_j (1 - p_ij^q) / q`` with ``p_ij`` the probability of label ``j``'s
    target: ``sigmoid(f_ij)`` for a positive, ``1 - sigmoid(f_ij)`` for a negative. It
    interpolates between BCE (``q -> 0``) and the mean absolute error (``q = 1``), which is
    robust to label noise but slow to fit; the paper's ``q = 0.7`` is the default. The
    paper's truncated variant (``L_trunc``, with its pruning of samples every few epochs)
    is not implemented.

    Args:
        q: the exponent, in ``(0, 1]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, q: float = 0.7, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.q = check_fraction(q, "q", open_low=True)

    def per_sample(
        self, logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
    ) -> torch.Tensor:
        return F.generalized_ce_per_sample(logits, positive, self.q, known)

    def extra_repr(self) -> str:
        return f"q={self.q}, reduction={self.reduction!r}"


class LargeLossRejection(MultiLabelLoss):
    """LL-R, large-loss rejection (Kim et al., "Large Loss Matters in Weakly Supervised
    Multi-Label Classification", CVPR 2022), for missing labels.

    BCE with every unobserved label taken as negative; in each batch the negative entries
    with the largest BCE are rejected (left out of the loss, as the authors' code: the
    ``k = ceil(N m rate)`` largest, where ``N m`` counts every entry of the batch, and any
    tied with the ``k``-th). The rejection rate is ``epoch * delta_rel`` percent: none in
    the first epoch (``epoch`` 0), growing by ``delta_rel`` each epoch, at most every
    negative. The choice is made on the unweighted losses of the whole batch;
    ``sample_weight`` then weights the rows. Summed over labels as :class:`BCELoss` (the
    authors average over the ``N m`` entries: ``m`` times smaller).

    The loss learns the epoch from :meth:`set_epoch`, which ``rmlc train`` and
    ``RMLClassifier`` call at the start of each epoch; the epoch is kept in ``state_dict``.
    In your own loop, call ``loss.set_epoch(epoch)`` (0-based) before each epoch.

    Args:
        delta_rel: the rejection rate's increase per epoch, in percent of the batch's
            entries, in ``[0, 100]``: ``0.2`` is the authors' ``--delta_rel 0.2`` (their
            configuration divides it by 100), 0.2 percent more entries rejected each epoch.
            Their README lists 0.1 to 0.5; 0 is plain BCE.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Attributes:
        epoch: the epoch in progress, 0-based (0 until :meth:`set_epoch` is called).
    """

    def __init__(self, delta_rel: float = 0.2, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if (
            isinstance(delta_rel, bool)
            or not isinstance(delta_rel, numbers.Real)
            or not (math.isfinite(delta_rel) and 0.0 <= delta_rel <= 100.0)
        ):
            raise ParameterError(
                "delta_rel must lie in [0, 100] (percent of the batch's entries added to the "
                f"rejection rate each epoch); got {delta_rel!r}"
            )
        self.delta_rel = float(delta_rel)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch about to be trained, 0-based: its rejection rate is ``epoch *
        delta_rel`` percent."""
        self.epoch = check_integer(epoch, "epoch", 0)

    @property
    def rejection_rate(self) -> float:
        """The fraction of the batch's entries rejected in this epoch, in ``[0, 1]``."""
        return min(self.epoch * self.delta_rel / 100.0, 1.0)

    def get_extra_state(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])

    def per_sample(
        self, logits: torch.Tensor, positive: torch.Tensor, known: torch.Tensor | None = None
    ) -> torch.Tensor:
        return F.large_loss_rejection_per_sample(logits, positive, self.rejection_rate, known)

    def extra_repr(self) -> str:
        return f"delta_rel={self.delta_rel}, epoch={self.epoch}, reduction={self.reduction!r}"
