"""Multi-label evaluation metrics, in percent: top-k P/R/F1, mAP, accuracy and a meter.

The functions are pure: they take a score matrix ``(N, m)`` (``N`` samples, ``m``
classes; a torch tensor or a NumPy array) and a target matrix of the same shape with
values in {0, 1} or in {-1, +1}, and return Python floats in percent (0..100: mAP 98.7,
not 0.987; only the building block :func:`average_precision_per_class` returns fractions).
They run on the CPU in float64, whatever the device and floating dtype of the input. The
one fraction of rmlc is ``RMLClassifier.score`` (:mod:`rmlc.linear`), which follows
scikit-learn's convention for ``score``; ``RMLClassifier.metrics`` is in percent.

* :func:`topk_metrics` -- the ML-GCN protocol: per-class (``P-C``, ``R-C``, ``F1-C``) and
  overall (``P-O``, ``R-O``, ``F1-O``) precision, recall and F1 of the top-k predictions.
* :func:`mean_average_precision` -- mAP, uninterpolated (identical to scikit-learn's
  ``average_precision_score``, ties included), VOC 2010+ all-point or VOC2007 11-point.
* :func:`accuracy` -- single-label top-1 accuracy.
* :class:`MultiLabelMeter` (:mod:`rmlc.metrics.meter`) -- accumulates batches (and
  gathers them across ``torch.distributed`` ranks) and then calls the functions above.

Partial labels: :func:`topk_metrics`, :func:`mean_average_precision` and the meter take an
optional ``(N, m)`` bool ``known`` mask (True where the label is known; None: all known)
and leave the unknown entries out, as Open Images' evaluation does (docs/metrics.md).
"""

from rmlc.metrics.functional import (
    Convention,
    F1Mode,
    Interpolation,
    Threshold,
    accuracy,
    average_precision_per_class,
    mean_average_precision,
    topk_metrics,
    topk_predictions,
)
from rmlc.metrics.meter import MultiLabelMeter

__all__ = [
    "Convention",
    "F1Mode",
    "Interpolation",
    "MultiLabelMeter",
    "Threshold",
    "accuracy",
    "average_precision_per_class",
    "mean_average_precision",
    "topk_metrics",
    "topk_predictions",
]
