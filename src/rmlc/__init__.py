"""rmlc: robust, semi-supervised multi-label image classification (RML-CNN, SS-RML-CNN).

The losses (``RMLCLoss`` and baselines) and metrics import light; the classifier on fixed
features, label propagation and training load on first use.
"""

from __future__ import annotations

from typing import Any

from rmlc.losses import AsymmetricLoss, BCELoss, RMLCLoss, SoftmaxLoss, WARPLoss, build_loss

__version__ = "0.1.0"

__all__ = [
    "AsymmetricLoss",
    "BCELoss",
    "RMLCLoss",
    "RMLClassifier",
    "SoftmaxLoss",
    "WARPLoss",
    "__version__",
    "build_loss",
    "propagate_labels",
]


def __getattr__(name: str) -> Any:
    if name == "RMLClassifier":
        from rmlc.linear import RMLClassifier

        return RMLClassifier
    if name == "propagate_labels":
        from rmlc.propagation import propagate_labels

        return propagate_labels
    raise AttributeError(f"module 'rmlc' has no attribute {name!r}")
