"""Fashion-MNIST, single-label, in memory: the embedded subset or the full set."""

from __future__ import annotations

import functools

import numpy as np

from rmlc import data as datasets
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import one_hot, read_both_splits
from rmlc.train.sources.registry import SourceEntry, SourceRows, SourceSplit

__all__ = ["ENTRY", "read", "read_split"]


@functools.lru_cache(maxsize=4)
def _arrays(split: str, root: str | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    return datasets.load_fashion_mnist(split, root=root, source=source)


def read_split(split: str, data_root: str | None, source: str) -> SourceSplit:
    """``(N, 1, 28, 28)`` uint8 images, one-hot targets and class ``labels``."""
    images, labels = _arrays(split, data_root, source)
    classes = list(datasets.FASHION_MNIST_CLASSES)
    return SourceSplit(images, one_hot(labels, len(classes)), classes, labels)


def read(config: TrainConfig) -> SourceRows:
    """The training and test images (``data_root``: where the full set's files are)."""
    return read_both_splits(read_split, config)


ENTRY = SourceEntry(
    "fashion-mnist",
    read,
    "Fashion-MNIST, single-label (embedded subset, or --source full)",
    keys=("source", "data_root"),
    read_split=read_split,
)
