"""Small helpers shared by the ``rmlc.data`` modules: argument checks and seed derivation.

Everything here is private to :mod:`rmlc.data`; the helpers exist so that every module
reports bad parameters with the same wording (the parameter's name and the value found).
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

__all__ = ["PathLike", "as_path", "check_fraction", "check_seed", "derive_seed", "shorten"]

PathLike = str | os.PathLike[str]

_MAX_LISTED = 5


def check_fraction(value: float, name: str, *, open_low: bool = False) -> float:
    """Return ``value`` as a float after checking that it lies in ``[0, 1]``.

    Args:
        value: the number to check.
        name: the parameter's name, used in the error message.
        open_low: if True, 0 itself is rejected (the interval is ``(0, 1]``).

    Raises:
        ValueError: naming the parameter when the value is outside the interval or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    low_ok = value > 0 if open_low else value >= 0
    if not (math.isfinite(value) and low_ok and value <= 1):
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return value


def check_seed(seed: int, name: str = "seed") -> int:
    """Return ``seed`` as a Python int after checking it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def derive_seed(seed: int, *tags: int) -> int:
    """Derive an independent 63-bit seed from ``seed`` and integer tags (via SeedSequence).

    Two different tag tuples give statistically independent streams for the same ``seed``.
    """
    state = np.random.SeedSequence([check_seed(seed), *tags]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def shorten(items: list[object] | np.ndarray, limit: int = _MAX_LISTED) -> str:
    """Comma-separated listing of the first ``limit`` items, with a count of the rest."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def as_path(path: PathLike, name: str = "path") -> Path:
    """Convert a str or os.PathLike to :class:`pathlib.Path`, rejecting other types."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)
