"""Losses for multi-label learning, all called as
``loss(logits, targets, sample_weight=None, *, known=None)`` (``known``: an optional
``(N, m)`` bool mask of the entries whose label is known, for partial labels).

``RMLCLoss`` is the paper's robust loss (``RMLCLoss()`` the recommended configuration,
``RMLCLoss.paper()`` the paper's own); ``WARPLoss``, ``BCELoss``, ``SoftmaxLoss`` and
``AsymmetricLoss`` are baselines, ``GeneralizedCrossEntropy`` and ``LargeLossRejection``
baselines made for noisy and missing labels. Every loss has one entry in the registry
(:mod:`rmlc.losses.registry`, ``LOSS_REGISTRY``), which every entry point reads;
:func:`build_loss` makes one by name, :func:`register_loss` adds one.
"""

from __future__ import annotations

from rmlc.losses.base import MultiLabelLoss
from rmlc.losses.baselines import (
    AsymmetricLoss,
    BCELoss,
    GeneralizedCrossEntropy,
    LargeLossRejection,
    SoftmaxLoss,
)
from rmlc.losses.ranking import RMLCLoss, WARPLoss
from rmlc.losses.registry import (
    LOSS_REGISTRY,
    LOSSES,
    LossEntry,
    build_loss,
    loss_entry,
    register_loss,
    unregister_loss,
)

__all__ = [
    "LOSSES",
    "LOSS_REGISTRY",
    "AsymmetricLoss",
    "BCELoss",
    "GeneralizedCrossEntropy",
    "LargeLossRejection",
    "LossEntry",
    "MultiLabelLoss",
    "RMLCLoss",
    "SoftmaxLoss",
    "WARPLoss",
    "build_loss",
    "loss_entry",
    "register_loss",
    "unregister_loss",
]
