"""The heat kernel ``s_i = exp(-d_i / t)``: the one check of the temperature ``t``, its value
for a set of distances, and the weights.

:func:`check_temperature` is the only place ``t`` is checked: :func:`propagate_labels`,
:class:`rmlc.train.TrainConfig` (when the config is made) and
:class:`rmlc.linear.RMLClassifier` (at ``fit``) all call it, so a temperature that
propagation would refuse is refused up front, with the same message.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from rmlc.checks import TEMPERATURE, check

__all__ = ["TEMPERATURES", "Temperature", "check_temperature", "heat_kernel_weights", "temperature"]

Temperature = Literal["mean", "authors"] | float
# The temperatures taken from the distances (the paper gives no value).
TEMPERATURES = ("mean", "authors")


def check_temperature(t: object) -> Temperature:
    """``t`` when it is ``"mean"``, ``"authors"`` or a positive finite number (booleans are
    not numbers here): :data:`rmlc.checks.TEMPERATURE`.

    Raises:
        ParameterError: (a ``ValueError``) naming ``t`` and the value found.
    """
    return check(t, TEMPERATURE, "t")  # type: ignore[return-value]


def temperature(distances: torch.Tensor, t: Temperature, n_labeled: int) -> float:
    """The temperature used for the distances ``(u,)`` of every unlabeled sample.

    ``"mean"``: their mean; ``"authors"``: the mean times ``u / (l + u)``; a number: itself.
    NaN for ``"mean"`` and ``"authors"`` when ``u`` is 0 (no distance to average).
    """
    if not isinstance(t, str):
        return float(t)
    n_unlabeled = distances.shape[0]
    if n_unlabeled == 0:
        return math.nan
    mean = float(distances.mean())
    return mean if t == "mean" else mean * n_unlabeled / (n_labeled + n_unlabeled)


def heat_kernel_weights(distances: torch.Tensor, t_used: float) -> torch.Tensor:
    """``(u,)`` float32 weights ``exp(-distance / t)`` of the float64 distances ``(u,)``, on
    their device, floored at the smallest normal float32 (never exactly 0); all 1 when
    ``t`` is 0 (every distance is 0, and ``exp(-0 / t)`` is 1 for every ``t > 0``)."""
    if t_used == 0.0:
        return torch.ones(distances.shape[0], dtype=torch.float32, device=distances.device)
    weights = torch.exp(-distances / t_used).to(torch.float32)
    return weights.clamp_(min=torch.finfo(torch.float32).tiny)
