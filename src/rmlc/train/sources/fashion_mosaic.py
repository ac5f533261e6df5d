"""The fashion-mosaic benchmark (Fashion-MNIST 2x2 outfit mosaics), multi-label, in memory.

The benchmark itself is fixed (built with seed 0) whatever the run's seed, so that seeds
vary training, not the benchmark; ``source`` picks the embedded or the full Fashion-MNIST.
"""

from __future__ import annotations

import functools

import numpy as np

from rmlc import data as datasets
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import train_and_test
from rmlc.train.sources.registry import SourceEntry, SourceRows, SourceSplit

__all__ = ["ENTRY", "read", "read_split"]


@functools.lru_cache(maxsize=4)
def _arrays(split: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's arrays, built once per process (experiments train many networks)."""
    return datasets.fashion_mosaic(split, source=source, seed=0)


def read_split(split: str, data_root: str | None, source: str) -> SourceSplit:
    """``(N, 1, 56, 56)`` uint8 mosaics and their ``(N, 10)`` targets (``data_root`` unused:
    the full Fashion-MNIST is read where :func:`rmlc.data.load_fashion_mnist` finds it)."""
    images, targets = _arrays(split, source)
    return SourceSplit(images, targets.astype(np.float32), list(datasets.FASHION_MNIST_CLASSES))


def read(config: TrainConfig) -> SourceRows:
    """The training mosaics and the test mosaics."""
    return train_and_test(
        read_split("train", None, config.source), read_split("test", None, config.source)
    )


ENTRY = SourceEntry(
    "fashion-mosaic",
    read,
    "Fashion-MNIST outfit mosaics, multi-label (embedded, or --source full)",
    keys=("source",),
    read_split=read_split,
)
