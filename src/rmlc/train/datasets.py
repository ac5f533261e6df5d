"""A run's data: its source read, the protocol applied, image files checked, stores built.

:func:`build_training_data` is the whole path, for every source: the source named by
``config.dataset`` reads its rows (:mod:`rmlc.train.sources`), the one protocol splits and
corrupts them (:func:`rmlc.train.protocol.apply_protocol`), image files are checked
before anything is written (:func:`_preflight`), and the stores and views are built
(:func:`rmlc.train.data.assemble`). :func:`training_data` does the same for rows read
elsewhere (images in memory: :func:`rmlc.train.fit`).
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rmlc import data as datasets
from rmlc.checks import check_choice
from rmlc.data.shards import ShardSet
from rmlc.train.accounting import tags_table_rows
from rmlc.train.config import TrainConfig
from rmlc.train.data import ArrayStore, FileStore, ShardStore, TrainingData, assemble
from rmlc.train.protocol import Split, apply_protocol
from rmlc.train.sources import SOURCES, SourceRows, check_source_keys, source_entry
from rmlc.train.sources.tags import read_tags, table_images

_SIZE_SAMPLE = 64  # images whose size sets the small CNN's default input size
_SMALL_CNN_MAX_SIZE = 128

__all__ = [
    "DATASETS",
    "build_training_data",
    "load_split",
    "read_tags",
    "table_images",
    "training_data",
]

DATASETS = SOURCES  # every source's name (a live view of the registry)


def build_training_data(config: TrainConfig) -> TrainingData:
    """The :class:`TrainingData` of ``config.dataset``: source, protocol, pre-flight,
    stores."""
    entry = source_entry(config.dataset)
    check_source_keys(entry, config)
    return training_data(entry.read(config), config)


def training_data(rows: SourceRows, config: TrainConfig) -> TrainingData:
    """The :class:`TrainingData` of rows a source read: the protocol's split of them, the
    image files it uses checked, then the stores."""
    _check_in_memory_keys(rows, config)
    split = apply_protocol(rows, config)
    split = _preflight_split(rows, split, config)
    return _stores(rows, split, config)


def _check_in_memory_keys(rows: SourceRows, config: TrainConfig) -> None:
    """Refuse, by name, the keys of image files for images held in memory."""
    if not isinstance(rows.images, np.ndarray | torch.Tensor):
        return
    for key, unset in (("image_cache", None), ("bad_images", "raise")):
        if getattr(config, key) != unset:
            raise ValueError(
                f"{key} applies to image files; dataset {config.dataset!r} holds its "
                "images in memory: leave it out"
            )


def _default_image_size(images: list | ShardStore, rows: np.ndarray, backbone: str) -> int:
    """The side image files are resized to unless ``image_size`` says: 224 for ImageNet
    backbones; for the small CNN the images' own size, the median longer side of the first
    ``_SIZE_SAMPLE`` training images (headers only), capped at ``_SMALL_CNN_MAX_SIZE``."""
    if backbone != "small-cnn":
        return 224
    sides = []
    for row in rows[:_SIZE_SAMPLE]:
        source = images[row] if isinstance(images, list) else io.BytesIO(images.read(row))
        with Image.open(source) as image:
            sides.append(max(image.size))
    return int(min(_SMALL_CNN_MAX_SIZE, np.median(sides))) if sides else _SMALL_CNN_MAX_SIZE


def _preflight(splits: dict[str, tuple[list, np.ndarray]], config: TrainConfig):
    """The rows of each split (``name: (paths, rows)``) whose image files decode.

    Every file of every split is checked in one pass, before anything of the run is
    written. The bad ones are named all at once: an error (``bad_images="raise"``) or a
    warning (``"skip"``, they are left out) giving their count and the first
    twenty with what is wrong with each; the full list goes to
    ``<out>.bad-images.txt``, beside the run folder.
    """
    found: list[tuple[str, str, str]] = []  # (split, path, reason)
    kept = {}
    for split, (paths, rows) in splits.items():
        reasons = datasets.scan_image_files([paths[row] for row in rows])
        found += [(split, str(paths[rows[i]]), reason) for i, reason in reasons.items()]
        kept[split] = np.delete(rows, list(reasons))
    if not found:
        return kept
    report = Path(f"{str(config.out).rstrip('/')}.bad-images.txt")
    total = sum(len(rows) for _, rows in splits.values())
    summary = datasets.describe_bad_files(found, total, report)
    if config.bad_images == "raise":
        raise ValueError(
            f"{summary}\nFix or remove them, or pass --bad-images skip to leave them out."
        )
    warnings.warn(f"skipped: {summary}", stacklevel=3)
    return kept


def _preflight_split(rows: SourceRows, split: Split, config: TrainConfig) -> Split:
    """The split without the rows whose image files do not decode (:func:`_preflight`).
    Images in memory need no check; shards were checked when they were written (a damaged
    image is an error naming its shard and key when it is read)."""
    images, test = rows.images, split.test
    splits = {}
    if isinstance(images, list):
        splits.update(training=(images, split.labeled), unlabeled=(images, split.unlabeled))
    if test is not None and isinstance(test[0], list):
        splits["test"] = (test[0], np.arange(len(test[0])))
    if not splits:
        return split
    kept = _preflight(splits, config)
    if "test" in kept:
        test = ([test[0][row] for row in kept["test"]], test[1][kept["test"]])
    return dataclasses.replace(
        split,
        labeled=kept.get("training", split.labeled),
        unlabeled=kept.get("unlabeled", split.unlabeled),
        test=test,
    )


def _stores(rows: SourceRows, split: Split, config: TrainConfig) -> TrainingData:
    """The stores of the images (in memory, files or shards) and the views of the split."""
    images, test = rows.images, split.test
    if isinstance(images, np.ndarray | torch.Tensor):
        store = ArrayStore(images)
        if test is not None:
            test = (ArrayStore(test[0]), np.asarray(test[1], np.float32))
    else:
        size = config.image_size or _default_image_size(
            images if isinstance(images, list) else ShardStore(images, 0),
            split.labeled,
            config.backbone,
        )
        store = _encoded_store(images, size, config.image_cache)
        if test is not None:
            test = (_encoded_store(test[0], size, config.image_cache), test[1])
    data = assemble(
        store,
        split.targets,
        split.labeled,
        split.unlabeled,
        test,
        split.classes,
        config,
        clean_targets=split.clean,
        negatives=split.negatives,
        test_negatives=split.test_negatives,
    )
    if rows.labels is not None:  # for analysis: the true class of each unlabeled sample
        data.unlabeled_classes = torch.as_tensor(rows.labels[split.unlabeled])
    if rows.tables is not None:
        data.rows = tags_table_rows(data, config, rows.tables, split.dropped)
    return data


def _encoded_store(images: list | ShardSet, size: int, cache: str | None) -> FileStore | ShardStore:
    if isinstance(images, list):
        return FileStore(images, None, size, cache=cache)
    return ShardStore(images, size, cache=cache)


def load_split(name: str, split: str, data_root: str | None, trained) -> tuple[object, np.ndarray]:
    """``(store, targets)`` of one split of a built-in dataset, for evaluation or features
    (the embedded Fashion-MNIST images unless ``data_root`` is given), read by the same
    source as training reads it."""
    check_choice(split, ("train", "test"), "split")
    entry = source_entry(name)
    if entry.read_split is None:
        raise ValueError(
            f"dataset {name!r} has no built-in splits: give its table with --table "
            "(and --image-root)"
        )
    source = "embedded" if data_root is None or name == "fashion-mosaic" else "full"
    loaded = entry.read_split(split, data_root, source)
    if isinstance(loaded.images, list):
        size = trained.normalization["size"]
        return FileStore(loaded.images, None, size, trained.in_channels), loaded.targets
    return ArrayStore(loaded.images), loaded.targets
