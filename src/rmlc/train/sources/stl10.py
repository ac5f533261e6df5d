"""STL-10, single-label, in memory, with its own unlabeled pool for semi-supervised runs.

The labeled training images are STL-10's fold ``seed % 10`` (its protocol: ten folds of
1,000 images); the 100,000 unlabeled images are read only when the run is semi-supervised.
"""

from __future__ import annotations

import numpy as np

from rmlc import data as datasets
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import one_hot, require, train_and_test
from rmlc.train.sources.registry import SourceEntry, SourceRows, SourceSplit

__all__ = ["ENTRY", "read", "read_split"]


def read_split(
    split: str, data_root: str | None, source: str, folds: int | None = None
) -> SourceSplit:
    """``(N, 3, 96, 96)`` uint8 images, one-hot targets and class ``labels`` (-1 for the
    ``"unlabeled"`` split)."""
    root = require(data_root, "--data-root (the stl10 folder)", "stl10")
    loaded = datasets.load_stl10(root, split, folds=folds)
    classes = list(loaded.classes)
    return SourceSplit(loaded.images, one_hot(loaded.labels, len(classes)), classes, loaded.labels)


def read(config: TrainConfig) -> SourceRows:
    """Fold ``seed % 10`` and the test images; with ``semi_supervised`` the unlabeled
    images are appended to the pool as the source's unlabeled rows (zero targets)."""
    train = read_split("train", config.data_root, config.source, config.seed % 10)
    rows = train_and_test(train, read_split("test", config.data_root, config.source))
    if not config.semi_supervised:
        return rows
    pool = read_split("unlabeled", config.data_root, config.source).images
    rows.images = np.concatenate([train.images, pool])
    rows.targets = np.concatenate(
        [train.targets, np.zeros((len(pool), train.targets.shape[1]), np.float32)]
    )
    rows.labels = np.concatenate([train.labels, np.full(len(pool), -1)])
    rows.unlabeled = len(train.images) + np.arange(len(pool))
    return rows


ENTRY = SourceEntry(
    "stl10",
    read,
    "STL-10, single-label, with its unlabeled pool",
    keys=("data_root",),
    read_split=read_split,
)
