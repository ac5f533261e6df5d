"""What the built-in sources share: one-hot targets, a required key, two splits as rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from rmlc.train.sources.registry import SourceRows, SourceSplit

if TYPE_CHECKING:
    from rmlc.train.config import TrainConfig

__all__ = ["one_hot", "read_both_splits", "require", "train_and_test"]


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(N, m)`` float32 0/1 targets of ``(N,)`` class indices (-1: no positive)."""
    targets = np.zeros((len(labels), num_classes), dtype=np.float32)
    known = labels >= 0
    targets[np.flatnonzero(known), labels[known]] = 1.0
    return targets


def require(value: str | None, what: str, dataset: str) -> str:
    """``value``, or a ``ValueError`` saying that ``dataset`` needs ``what``."""
    if not value:
        raise ValueError(f"dataset {dataset!r} needs {what}")
    return value


def train_and_test(train: SourceSplit, test: SourceSplit) -> SourceRows:
    """The rows of a built-in set: its training split, every row labeled, and its test."""
    return SourceRows(
        images=train.images,
        targets=train.targets,
        classes=list(train.classes),
        test=(test.images, test.targets),
        labels=train.labels,
        test_labels=test.labels,
    )


def read_both_splits(
    read_split: Callable[[str, str | None, str], SourceSplit], config: TrainConfig
) -> SourceRows:
    """The rows of a built-in set whose ``read_split`` reads its training and test splits
    from ``config.data_root`` and ``config.source``."""
    return train_and_test(
        read_split("train", config.data_root, config.source),
        read_split("test", config.data_root, config.source),
    )
