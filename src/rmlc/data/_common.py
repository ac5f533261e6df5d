"""Small helpers shared by the ``rmlc.data`` modules: paths, listings and seed derivation.

Everything here is private to :mod:`rmlc.data` (parameter checks live in
:mod:`rmlc.checks`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rmlc.checks import check_seed

__all__ = ["PathLike", "as_path", "derive_seed", "shorten"]

PathLike = str | os.PathLike[str]

_MAX_LISTED = 5


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
