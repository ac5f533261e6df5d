"""MS-COCO 2014, multi-label, image files: ``data_root`` holds ``annotations/`` and the
``train2014`` and ``val2014`` folders (``val2014`` is the test split, as in the paper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rmlc import data as datasets
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import read_both_splits, require
from rmlc.train.sources.registry import SourceEntry, SourceRows, SourceSplit

__all__ = ["ENTRY", "read", "read_split"]


def read_split(split: str, data_root: str | None, source: str) -> SourceSplit:
    """The image paths and ``(N, 80)`` targets of ``train2014`` or (``"test"``) ``val2014``."""
    root = Path(require(data_root, "--data-root", "coco"))
    year = "train2014" if split == "train" else "val2014"
    loaded = datasets.load_coco(root / "annotations" / f"instances_{year}.json", root / year)
    return SourceSplit(list(loaded.paths), loaded.targets.astype(np.float32), list(loaded.classes))


def read(config: TrainConfig) -> SourceRows:
    """The training and test images (the paper's 10% / 20% subsets: ``subsample``)."""
    return read_both_splits(read_split, config)


ENTRY = SourceEntry(
    "coco",
    read,
    "MS-COCO 2014, multi-label (80 classes)",
    keys=("data_root",),
    read_split=read_split,
)
