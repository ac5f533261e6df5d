"""NUS-WIDE, multi-label (81 concepts), image files under ``data_root``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rmlc import data as datasets
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import read_both_splits, require
from rmlc.train.sources.registry import SourceEntry, SourceRows, SourceSplit

__all__ = ["ENTRY", "read", "read_split"]


def read_split(split: str, data_root: str | None, source: str) -> SourceSplit:
    """The image paths and ``(N, 81)`` targets of one split."""
    loaded = datasets.load_nus_wide(Path(require(data_root, "--data-root", "nus-wide")), split)
    return SourceSplit(list(loaded.paths), loaded.targets.astype(np.float32), list(loaded.classes))


def read(config: TrainConfig) -> SourceRows:
    """The training and test images (the paper's 10% / 20% subsets: ``subsample``)."""
    return read_both_splits(read_split, config)


ENTRY = SourceEntry(
    "nus-wide",
    read,
    "NUS-WIDE, multi-label (81 concepts)",
    keys=("data_root",),
    read_split=read_split,
)
