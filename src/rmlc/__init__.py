"""rmlc: robust, semi-supervised multi-label image classification (RML-CNN, SS-RML-CNN)."""

from rmlc.losses import AsymmetricLoss, BCELoss, RMLCLoss, SoftmaxLoss, WARPLoss, build_loss

__version__ = "0.1.0"

__all__ = [
    "AsymmetricLoss",
    "BCELoss",
    "RMLCLoss",
    "SoftmaxLoss",
    "WARPLoss",
    "__version__",
    "build_loss",
]
