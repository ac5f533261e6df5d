"""What one evaluation of the ranking loss computes: :class:`RankingTerms`.

Every kernel of the ranking losses (:mod:`rmlc.losses.functional`, the numba kernel of
:mod:`rmlc.losses.fused`, the Triton kernel of :mod:`rmlc.losses.fused_triton`) takes the
same settings: the ramp ``s`` and ``beta``, the margin weight ``kappa`` and how ranks are
estimated. They travel as one object, checked once when it is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rmlc.checks import KAPPA, RAMP_BETA, RAMP_S, check, check_choice
from rmlc.losses.ranks import RankMode, RankRounding

__all__ = ["RANK_MODES", "ROUNDINGS", "RankingTerms"]

RANK_MODES = ("sampled", "exact")
ROUNDINGS = ("floor", "round")


@dataclass(frozen=True, eq=False)
class RankingTerms:
    """``sum_{j in C+} L(r_j) sum_{k in C-} P(u_jk) + kappa sum_j P(1 - y_j f_j)`` per sample,
    with the penalty ``P = H_1 - beta H_s`` of ``t = 1 - u``.

    Attributes:
        s: the ramp's cap is ``1 - s``, ``s`` in ``(-1, 0]``.
        beta: weight of ``H_s``: 1 is RMLC's ramp, 0 the hinge, 0.9 the authors' soft ramp.
        kappa: weight of the margin term, ``>= 0`` (0: the ranking term alone).
        rank: ``"sampled"`` (the paper's estimate), ``"exact"`` (``r_j = v_j``) or a
            ``(N, m)`` integer tensor of given ranks (read at positive entries).
        rounding: how the sampled rank ``(m - 1) / q`` becomes an integer.
        generator: random source of the sampled ranks (on the logits' device).
        balance_margin: weight each sample's positives and negatives to equal totals in the
            margin term, ``m / (2 |C+|)`` and ``m / (2 |C-|)``
            (:func:`~rmlc.losses.functional.balanced_margin_weights`); False weighs every
            label alike, as the paper does.
    """

    s: float = -0.8
    beta: float = 1.0
    kappa: float = 5.0
    rank: RankMode | torch.Tensor = "sampled"
    rounding: RankRounding = "floor"
    generator: torch.Generator | None = None
    balance_margin: bool = False

    def __post_init__(self) -> None:
        check(self.s, RAMP_S, "s")
        check(self.beta, RAMP_BETA, "beta")
        check(self.kappa, KAPPA, "kappa")
        if not isinstance(self.rank, torch.Tensor):
            check_choice(self.rank, RANK_MODES, "rank")
        check_choice(self.rounding, ROUNDINGS, "rounding")

    @classmethod
    def warp(
        cls,
        rank: RankMode | torch.Tensor = "sampled",
        rounding: RankRounding = "floor",
        generator: torch.Generator | None = None,
    ) -> RankingTerms:
        """WARP's loss: the hinge ranking term alone (``s = beta = kappa = 0``)."""
        return cls(s=0.0, beta=0.0, kappa=0.0, rank=rank, rounding=rounding, generator=generator)
