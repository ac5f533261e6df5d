"""CIFAR-10, single-label, in memory, from its Python-version folder (``data_root``)."""

from __future__ import annotations

from rmlc import data as datasets
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import one_hot, read_both_splits, require
from rmlc.train.sources.registry import SourceEntry, SourceRows, SourceSplit

__all__ = ["ENTRY", "read", "read_split"]


def read_split(split: str, data_root: str | None, source: str) -> SourceSplit:
    """``(N, 3, 32, 32)`` uint8 images, one-hot targets and class ``labels``."""
    root = require(data_root, "--data-root (the cifar10 folder)", "cifar10")
    loaded = datasets.load_cifar10(root, train=split == "train")
    classes = list(loaded.classes)
    return SourceSplit(loaded.images, one_hot(loaded.labels, len(classes)), classes, loaded.labels)


def read(config: TrainConfig) -> SourceRows:
    """The training and test images."""
    return read_both_splits(read_split, config)


ENTRY = SourceEntry(
    "cifar10", read, "CIFAR-10, single-label", keys=("data_root",), read_split=read_split
)
