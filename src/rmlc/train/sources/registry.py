"""The one table of data sources: what ``TrainConfig.dataset`` names, and what each reads.

A source is one module with a ``read(config)`` that returns a :class:`SourceRows` (the one
type every source returns: the training pool's images and targets, which rows the source
itself gives without labels, and the test split) and one :class:`SourceEntry`. What
happens to the rows afterwards (``classes``, ``subsample``, ``num_labeled``, corruption,
``max_unlabeled``) is the protocol's (:mod:`rmlc.train.protocol`), the same for every
source. :func:`register_source` adds one from outside; ``rmlc train --dataset`` and
:func:`rmlc.train.datasets.build_training_data` then know it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse
import torch

from rmlc.checks import ParameterError
from rmlc.data.shards import ShardSet

if TYPE_CHECKING:
    from rmlc.data.tags_table import TagsTable
    from rmlc.train.config import TrainConfig

__all__ = [
    "SOURCES",
    "SOURCE_KEYS",
    "SourceEntry",
    "SourceRows",
    "SourceSplit",
    "check_source_keys",
    "register_source",
    "source_entry",
    "unregister_source",
]

# The config keys that say where a source's data is and how to read it: each source reads
# some of them, and a key given to a source that does not read it is refused by name
# (never ignored).
SOURCE_KEYS = ("source", "data_root", "train", "test", "unlabeled", "image_root", "empty_labels")
_UNSET: dict[str, Any] = {"source": "embedded"}  # the keys' values when not given
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")

Images = np.ndarray | torch.Tensor | list[Path] | ShardSet
Targets = np.ndarray | scipy.sparse.csr_array


@dataclass
class SourceRows:
    """What a source read: one training pool and an optional test split.

    Attributes:
        images: the pool's ``N`` images: uint8 ``(N, C, H, W)`` or ``(N, H, W)`` in memory,
            a list of ``N`` image paths, or a :class:`~rmlc.data.shards.ShardSet`.
        targets: ``(N, m)`` 0/1 targets, dense or SciPy sparse (rows without labels: zeros).
        classes: the ``m`` class names.
        test: ``(images, targets)`` of the test split in the same forms, or None.
        labeled: the rows that have labels (None: every row not in ``unlabeled``).
        unlabeled: the rows the source gives without labels (its own unlabeled pool).
        labels: ``(N,)`` class index of each row of a single-label source (-1: none), or
            None for a multi-label one; ``classes`` and class-stratified ``num_labeled``
            need it.
        test_labels: ``(n_test,)`` class indices of the test rows, likewise.
        tables: ``role -> (path, TagsTable)`` of the tags tables read (``train``,
            ``unlabeled``, ``test``), for the run's row accounting; None for other sources.
        negatives: ``(N, m)`` the tags verified absent (partial labels: a tag neither
            positive nor verified absent is unknown), sparse or dense; None: every tag not
            positive is negative.
        test_negatives: the same for the test split.
    """

    images: Images
    targets: Targets
    classes: list[str]
    test: tuple[Images, Targets] | None = None
    labeled: np.ndarray | None = None
    unlabeled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    tables: dict[str, tuple[str, TagsTable]] | None = None
    negatives: Targets | None = None
    test_negatives: Targets | None = None

    def __len__(self) -> int:
        return self.targets.shape[0]

    def labeled_rows(self) -> np.ndarray:
        """Sorted int64 rows that have labels."""
        if self.labeled is not None:
            return np.asarray(self.labeled, dtype=np.int64)
        return np.setdiff1d(np.arange(len(self)), self.unlabeled).astype(np.int64)


@dataclass
class SourceSplit:
    """One split of a built-in set, for evaluation (:func:`rmlc.train.datasets.load_split`):
    images in memory (``(N, C, H, W)`` uint8) or as files, ``(N, m)`` float32 targets,
    and for single-label sets the ``(N,)`` class ``labels``."""

    images: Images
    targets: np.ndarray
    classes: list[str]
    labels: np.ndarray | None = None  # (N,) class indices of a single-label set


@dataclass(frozen=True)
class SourceEntry:
    """What the entry points need to know about one source.

    Attributes:
        name: its name for ``--dataset`` and ``TrainConfig.dataset``.
        read: ``config -> SourceRows``.
        summary: one line: what the source is.
        keys: which of :data:`SOURCE_KEYS` it reads (any other one given is refused).
        read_split: ``(split, data_root, source) -> SourceSplit`` of a built-in set's
            ``"train"`` or ``"test"`` split (``rmlc evaluate --dataset``), or None.
    """

    name: str
    read: Callable[[TrainConfig], SourceRows]
    summary: str = ""
    keys: tuple[str, ...] = ()
    read_split: Callable[[str, str | None, str], SourceSplit] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ParameterError(
                f"name must be lower-case letters, digits, '-', '_' or '.'; got {self.name!r}"
            )
        if not callable(self.read):
            raise ParameterError(f"read must be callable; got {self.read!r}")
        unknown = set(self.keys) - set(SOURCE_KEYS)
        if unknown:
            raise ParameterError(f"keys must be among {SOURCE_KEYS}; got {sorted(unknown)}")


_ENTRIES: dict[str, SourceEntry] = {}
SOURCES: Mapping[str, SourceEntry] = MappingProxyType(_ENTRIES)
"""Every source by name (a read-only view; change it with :func:`register_source`)."""


def register_source(entry: SourceEntry, *, replace: bool = False) -> SourceEntry:
    """Add a source to the registry; ``TrainConfig.dataset`` may name it from then on.

    Raises:
        ValueError: a source of that name exists (unless ``replace``).
    """
    if not isinstance(entry, SourceEntry):
        raise TypeError(f"entry must be a SourceEntry, got {type(entry).__name__}")
    if entry.name in _ENTRIES and not replace:
        raise ValueError(f"a source named {entry.name!r} is registered already")
    _ENTRIES[entry.name] = entry
    return entry


def unregister_source(name: str) -> SourceEntry:
    """Remove a source from the registry and return its entry (``KeyError`` if unknown)."""
    return _ENTRIES.pop(name)


def source_entry(name: str) -> SourceEntry:
    """The entry of a source by name.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name not in _ENTRIES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(_ENTRIES)}")
    return _ENTRIES[name]


def check_source_keys(entry: SourceEntry, config: TrainConfig) -> None:
    """Refuse, by name, a key of :data:`SOURCE_KEYS` given to a source that does not read
    it (``--data-root`` for the embedded mosaics, ``--test`` with a built-in set ...)."""
    for key in SOURCE_KEYS:
        value = getattr(config, key)
        if key not in entry.keys and value is not None and value != _UNSET.get(key):
            readers = [name for name, other in _ENTRIES.items() if key in other.keys]
            raise ValueError(
                f"{key}={value!r} does not apply to dataset {entry.name!r} (it applies to "
                f"{', '.join(readers) or 'no source'}); leave it out"
            )
