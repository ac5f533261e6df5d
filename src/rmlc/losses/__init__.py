"""Losses for multi-label learning, all called as ``loss(logits, targets, sample_weight=None)``.

``RMLCLoss`` is the paper's robust loss (``RMLCLoss()`` the recommended configuration,
``RMLCLoss.paper()`` the paper's own); ``WARPLoss``, ``BCELoss``, ``SoftmaxLoss`` and
``AsymmetricLoss`` are baselines. :func:`build_loss` makes one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rmlc.checks import ParameterError
from rmlc.losses.base import MultiLabelLoss
from rmlc.losses.baselines import AsymmetricLoss, BCELoss, SoftmaxLoss
from rmlc.losses.ranking import RMLCLoss, WARPLoss

__all__ = [
    "LOSSES",
    "AsymmetricLoss",
    "BCELoss",
    "MultiLabelLoss",
    "RMLCLoss",
    "SoftmaxLoss",
    "WARPLoss",
    "build_loss",
]

LOSSES: dict[str, Callable[..., MultiLabelLoss]] = {
    "rmlc": RMLCLoss,
    "rmlc-paper": RMLCLoss.paper,
    "warp": WARPLoss,
    "bce": BCELoss,
    "softmax": SoftmaxLoss,
    "asl": AsymmetricLoss,
}


def build_loss(name: str, **params: Any) -> MultiLabelLoss:
    """Make a loss by name (``rmlc``, ``rmlc-paper``, ``warp``, ``bce``, ``softmax``, ``asl``).

    ``rmlc`` is :class:`RMLCLoss` at its defaults (the recommended configuration);
    ``rmlc-paper`` is :meth:`RMLCLoss.paper`, the loss exactly as the paper states it.

    Raises:
        ValueError: unknown name, or a parameter the loss does not take.
    """
    key = name.lower()
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    try:
        return LOSSES[key](**params)
    except ParameterError:  # a parameter it takes, with a wrong value: its own message
        raise
    except TypeError as error:
        raise ValueError(
            f"loss {key!r} does not take parameters {sorted(params)}: {error}"
        ) from None
