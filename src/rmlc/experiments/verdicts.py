"""The verdict on paired differences between two methods, shared by every report."""

from __future__ import annotations

import math
import statistics

__all__ = ["paired_verdict"]


def paired_verdict(differences: list[float]) -> tuple[str, float, float]:
    """Verdict on paired differences ``better - worse``: the 95% confidence interval of
    their mean (Student's t) decides.

    Returns:
        ``(verdict, low, high)``: ``"held"`` when the interval lies above 0, ``"did not
        hold"`` when below, ``"inconclusive"`` when it contains 0 (or with one pair).
    """
    from scipy import stats

    mean = statistics.fmean(differences)
    if len(differences) < 2:
        return "inconclusive", -math.inf, math.inf
    sem = statistics.stdev(differences) / math.sqrt(len(differences))
    half = float(stats.t.ppf(0.975, len(differences) - 1)) * sem
    low, high = mean - half, mean + half
    if low > 0:
        return "held", low, high
    if high < 0:
        return "did not hold", low, high
    return "inconclusive", low, high
