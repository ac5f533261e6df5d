"""Built-in datasets and users' tags tables, turned into :class:`TrainingData`.

Labeled subsets (``num_labeled``), label noise (``label_noise``, the paper's protocol) and
missing labels (``missing_labels``) are applied to the labeled training rows only, with the
run's seed. The fashion-mosaic benchmark itself is fixed (built with seed 0) whatever the
run's seed, so that seeds vary training, not the benchmark.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import torch
from PIL import Image

from rmlc import data as datasets
from rmlc.checks import check_choice
from rmlc.data.shards import ShardSet
from rmlc.data.tags_table import TagsTable
from rmlc.train.accounting import check_empty_labels, empty_label_rule, tags_table_rows
from rmlc.train.config import TrainConfig
from rmlc.train.data import ArrayStore, FileStore, ShardStore, TrainingData, assemble

_SIZE_SAMPLE = 64  # images whose size sets the small CNN's default input size
_SMALL_CNN_MAX_SIZE = 128

__all__ = ["DATASETS", "build_training_data", "load_split", "read_tags"]

DATASETS = ("fashion-mosaic", "fashion-mnist", "cifar10", "stl10", "coco", "nus-wide", "tags")


@functools.lru_cache(maxsize=4)
def _fashion_mosaic(split: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's arrays, built once per process (experiments train many networks)."""
    return datasets.fashion_mosaic(split, source=source, seed=0)


@functools.lru_cache(maxsize=4)
def _fashion_mnist(split: str, root: str | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    return datasets.load_fashion_mnist(split, root=root, source=source)


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    targets = np.zeros((len(labels), num_classes), dtype=np.float32)
    known = labels >= 0
    targets[np.flatnonzero(known), labels[known]] = 1.0
    return targets


def _choose_labeled(targets: np.ndarray, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept labeled (``num_labeled`` of them, class-stratified when single-label)."""
    rows = np.arange(len(targets))
    if config.num_labeled is None or config.num_labeled >= len(targets):
        return rows, rows[:0]
    if (targets.sum(axis=1) == 1).all():
        classes = targets.shape[1]
        per_class, remainder = divmod(config.num_labeled, classes)
        if remainder:
            raise ValueError(
                f"num_labeled={config.num_labeled} is not a multiple of the {classes} classes"
            )
        return datasets.split_labeled(targets.argmax(axis=1), per_class, seed=config.seed)
    order = np.random.default_rng(config.seed).permutation(len(targets))
    return np.sort(order[: config.num_labeled]), np.sort(order[config.num_labeled :])


def _corrupt(targets: np.ndarray, rows: np.ndarray, config: TrainConfig) -> np.ndarray:
    targets = targets.copy()
    if config.label_noise > 0:
        targets[rows] = datasets.corrupt_labels(
            targets[rows], config.label_noise, seed=config.seed, protocol="paper"
        )
    if config.missing_labels > 0:
        targets[rows] = datasets.drop_positives(
            targets[rows], config.missing_labels, seed=config.seed
        )
    return targets


def _clean_if_corrupted(clean: np.ndarray, config: TrainConfig) -> np.ndarray | None:
    """The targets before corruption, kept for analysis only when labels were corrupted."""
    return clean if config.label_noise > 0 or config.missing_labels > 0 else None


def _from_arrays(
    images: np.ndarray,
    targets: np.ndarray,
    test: tuple[np.ndarray, np.ndarray] | None,
    classes: list[str],
    config: TrainConfig,
    unlabeled_images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> TrainingData:
    """Images in memory; ``labels``/``test_labels``: class indices of single-label sets."""
    targets = targets.astype(np.float32)
    rows = np.arange(len(targets))
    outside = rows[:0]
    if config.classes is not None:  # some classes labeled; the others only unlabeled
        if labels is None:
            raise ValueError(f"classes applies to single-label datasets, not {config.dataset}")
        kept = np.asarray(config.classes)
        inside = np.isin(labels, kept)
        outside = rows[~inside]
        rows = rows[inside]
        targets = targets[:, kept]
        classes = [classes[c] for c in kept]
        if test is not None and test_labels is not None:
            keep_test = np.isin(test_labels, kept)
            test = (test[0][keep_test], test[1][keep_test][:, kept])
    if config.subsample is not None:
        chosen = datasets.subsample_multilabel(targets[rows], config.subsample, config.seed)
        rows = rows[np.sort(chosen)]
    chosen_labeled, chosen_unlabeled = _choose_labeled(targets[rows], config)
    labeled, unlabeled = rows[chosen_labeled], np.concatenate([rows[chosen_unlabeled], outside])
    clean = targets
    targets = _corrupt(targets, labeled, config)
    if unlabeled_images is not None:  # a separate unlabeled pool (STL-10)
        offset = len(images)
        images = np.concatenate([images, unlabeled_images])
        targets = np.concatenate(
            [targets, np.zeros((len(unlabeled_images), targets.shape[1]), np.float32)]
        )
        unlabeled = np.concatenate([unlabeled, offset + np.arange(len(unlabeled_images))])
        if labels is not None:
            labels = np.concatenate([labels, np.full(len(unlabeled_images), -1)])
    if not config.semi_supervised:
        unlabeled = unlabeled[:0]
    elif config.max_unlabeled is not None and len(unlabeled) > config.max_unlabeled:
        picked = np.random.default_rng(config.seed).permutation(len(unlabeled))
        unlabeled = np.sort(unlabeled[picked[: config.max_unlabeled]])
    test_split = None if test is None else (ArrayStore(test[0]), test[1].astype(np.float32))
    data = assemble(
        ArrayStore(images),
        targets,
        labeled,
        unlabeled,
        test_split,
        classes,
        config,
        clean_targets=_clean_if_corrupted(clean, config),
    )
    if labels is not None:  # for analysis: the true class of each unlabeled sample
        data.unlabeled_classes = torch.as_tensor(labels[unlabeled])
    return data


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


def _from_files(
    images: list | ShardSet,
    targets: np.ndarray | scipy.sparse.csr_array,
    labeled: np.ndarray,
    unlabeled: np.ndarray,
    test: tuple[list | ShardSet, np.ndarray | scipy.sparse.csr_array] | None,
    classes: list[str],
    config: TrainConfig,
) -> TrainingData:
    """Images as files (a list of paths) or in shards (a :class:`ShardSet`). Files are
    checked by :func:`_preflight`; shards were checked when they were written (a damaged
    image is an error naming its shard and key when it is read)."""
    if not config.semi_supervised:
        unlabeled = unlabeled[:0]
    splits = {}
    if isinstance(images, list):
        splits.update(training=(images, labeled), unlabeled=(images, unlabeled))
    if test is not None and isinstance(test[0], list):
        splits["test"] = (test[0], np.arange(len(test[0])))
    kept = _preflight(splits, config) if splits else {}
    labeled, unlabeled = kept.get("training", labeled), kept.get("unlabeled", unlabeled)
    if "test" in kept:
        test = ([test[0][row] for row in kept["test"]], test[1][kept["test"]])
    cache = config.image_cache

    def store(source: list | ShardSet, size: int) -> FileStore | ShardStore:
        if isinstance(source, list):
            return FileStore(source, None, size, cache=cache)
        return ShardStore(source, size, cache=cache)

    size = config.image_size or _default_image_size(
        images if isinstance(images, list) else ShardStore(images, 0), labeled, config.backbone
    )
    if config.label_noise > 0 or config.missing_labels > 0:  # the protocols need dense rows
        clean = (targets.toarray() if scipy.sparse.issparse(targets) else targets).astype(
            np.float32
        )
        targets = _corrupt(clean, labeled, config)
    else:  # a tags table's targets stay sparse
        clean = targets
    return assemble(
        store(images, size),
        targets,
        labeled,
        unlabeled,
        None if test is None else (store(test[0], size), test[1]),
        classes,
        config,
        clean_targets=_clean_if_corrupted(clean, config),
    )


def _require(value: str | None, what: str, dataset: str) -> str:
    if not value:
        raise ValueError(f"dataset {dataset!r} needs {what}")
    return value


@dataclass
class _Split:
    """One split of a built-in dataset as loaded: images in memory (``images``) or as files
    (``paths``), ``(N, m)`` 0/1 ``targets``, and for single-label sets the ``(N,)`` class
    ``labels``."""

    targets: np.ndarray
    classes: list[str]
    images: np.ndarray | None = None
    paths: list | None = None
    labels: np.ndarray | None = None


def _builtin_split(
    name: str, split: str, data_root: str | None, source: str, stl10_folds: int | None = None
) -> _Split:
    """One split (``"train"``, ``"test"`` or STL-10's ``"unlabeled"``) of a built-in
    dataset: the only place that knows how each is read."""
    if name == "fashion-mosaic":
        images, targets = _fashion_mosaic(split, source)
        return _Split(targets.astype(np.float32), list(datasets.FASHION_MNIST_CLASSES), images)
    if name in ("fashion-mnist", "cifar10", "stl10"):
        if name == "fashion-mnist":
            images, labels = _fashion_mnist(split, data_root, source)
            classes = list(datasets.FASHION_MNIST_CLASSES)
        else:
            root = _require(data_root, f"--data-root (the {name} folder)", name)
            loaded = (
                datasets.load_cifar10(root, train=split == "train")
                if name == "cifar10"
                else datasets.load_stl10(root, split, folds=stl10_folds)
            )
            images, labels, classes = loaded.images, loaded.labels, list(loaded.classes)
        return _Split(_one_hot(labels, len(classes)), classes, images, labels=labels)
    if name in ("coco", "nus-wide"):
        root = Path(_require(data_root, "--data-root", name))
        if name == "coco":
            year = "train2014" if split == "train" else "val2014"
            loaded = datasets.load_coco(
                root / "annotations" / f"instances_{year}.json", root / year
            )
        else:
            loaded = datasets.load_nus_wide(root, split)
        targets = loaded.targets.astype(np.float32)
        return _Split(targets, list(loaded.classes), paths=list(loaded.paths))
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def build_training_data(config: TrainConfig) -> TrainingData:
    """The :class:`TrainingData` of ``config.dataset``."""
    name = config.dataset
    if name == "tags":
        return _from_tags(config)
    folds = config.seed % 10 if name == "stl10" else None
    train = _builtin_split(name, "train", config.data_root, config.source, folds)
    test = _builtin_split(name, "test", config.data_root, config.source)
    if train.paths is not None:  # image files: COCO, NUS-WIDE
        rows = np.arange(len(train.paths))
        if config.num_labeled is not None:  # the paper's 10% / 20% subsets
            fraction = min(config.num_labeled / len(rows), 1.0)
            rows = np.sort(datasets.subsample_multilabel(train.targets, fraction, config.seed))
        test_split = (test.paths, test.targets)
        return _from_files(
            train.paths, train.targets, rows, rows[:0], test_split, train.classes, config
        )
    unlabeled_images = None
    if name == "stl10" and config.semi_supervised:  # STL-10's own unlabeled pool
        unlabeled_images = _builtin_split(name, "unlabeled", config.data_root, config.source).images
    return _from_arrays(
        train.images,
        train.targets,
        (test.images, test.targets),
        train.classes,
        config,
        unlabeled_images=unlabeled_images,
        labels=train.labels,
        test_labels=test.labels,
    )


def read_tags(
    path: str, classes: list[str] | None = None, require_labels: bool = False
) -> tuple[TagsTable, ShardSet | None]:
    """A tags table, or a shard folder's samples (and the shards)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} not found (a tags table or a shard folder)")
    if datasets.is_shard_folder(path):
        shards = datasets.read_shards(path, classes=classes, require_labels=require_labels)
        return shards.table, shards
    return datasets.read_tags_table(path, classes=classes, require_labels=require_labels), None


def _from_tags(config: TrainConfig) -> TrainingData:
    """Users' tags tables or shard folders: ``--train``, optional ``--unlabeled`` and
    ``--test``. Image paths of tables start at ``image_root``, by default the folder of
    the training table (of the test table when training from shards). A training row with
    an empty labels field is what ``empty_labels`` says
    (:func:`rmlc.train.accounting.empty_label_rule`); how every row of every table was
    used is kept in the data's ``rows``."""
    train_path = _require(config.train, "--train (a tags table or a shard folder)", "tags")
    train, shards = read_tags(train_path)
    if config.unlabeled and datasets.is_shard_folder(config.unlabeled) != (shards is not None):
        raise ValueError(
            f"--unlabeled {config.unlabeled} and --train {train_path} must be of one kind: "
            "both tags tables or both shard folders"
        )
    if len(train.images) == 0:
        raise ValueError(f"{train_path} has no rows: nothing to train on")
    if not train.labeled.any():
        raise ValueError(
            f"{train_path}: no row has labels; at least one labeled image is needed "
            "(rows with an empty labels column are unlabeled)"
        )
    rule = empty_label_rule(config)
    empty = check_empty_labels(train, train_path, rule)
    classes = list(train.classes)
    paths_from = train_path if shards is None else (config.test or train_path)
    root = Path(config.image_root or Path(paths_from).parent)
    images: list | ShardSet = shards if shards is not None else [root / i for i in train.images]
    labeled = np.flatnonzero(train.labeled)
    unlabeled = empty if rule == "unlabeled" else empty[:0]
    extra, images, targets = _join_unlabeled(config, classes, root, images, train.targets)
    unlabeled = np.concatenate([unlabeled, len(train) + np.arange(len(extra or ()))])
    test_table, test = _read_test(config, classes, root)
    if config.num_labeled is not None and config.num_labeled < len(labeled):
        order = np.random.default_rng(config.seed).permutation(labeled)
        labeled, unlabeled = (
            np.sort(order[: config.num_labeled]),
            np.concatenate([unlabeled, np.sort(order[config.num_labeled :])]),
        )
    data = _from_files(images, targets, labeled, unlabeled, test, classes, config)
    data.rows = tags_table_rows(
        data,
        config,
        (train_path, train),
        None if extra is None else (str(config.unlabeled), extra),
        None if test_table is None else (str(config.test), test_table),
    )
    return data


def _join_unlabeled(
    config: TrainConfig,
    classes: list[str],
    root: Path,
    images: list | ShardSet,
    targets: scipy.sparse.csr_array,
) -> tuple[TagsTable | None, list | ShardSet, scipy.sparse.csr_array]:
    """The ``--unlabeled`` table (or None), and the training images and targets with its
    rows appended (targets sparse: densified one batch at a time in training)."""
    if not config.unlabeled:
        return None, images, targets
    extra, extra_shards = read_tags(config.unlabeled, classes=classes)
    if isinstance(images, ShardSet):
        images = images.joined(extra_shards)
    else:
        images = images + [root / image for image in extra.images]
    none = scipy.sparse.csr_array((len(extra), len(classes)), dtype=np.uint8)
    return extra, images, scipy.sparse.vstack([targets, none], format="csr")


def _read_test(
    config: TrainConfig, classes: list[str], root: Path
) -> tuple[TagsTable | None, tuple | None]:
    """The ``--test`` table (labels required) and its ``(images, targets)``, or Nones."""
    if not config.test:
        return None, None
    table, test_shards = read_tags(config.test, classes=classes, require_labels=True)
    test_images = test_shards if test_shards is not None else [root / i for i in table.images]
    return table, (test_images, table.targets)


def load_split(name: str, split: str, data_root: str | None, trained) -> tuple[object, np.ndarray]:
    """``(store, targets)`` of one split of a built-in dataset, for evaluation or features
    (the embedded Fashion-MNIST images unless ``data_root`` is given)."""
    check_choice(split, ("train", "test"), "split")
    source = "embedded" if data_root is None or name == "fashion-mosaic" else "full"
    loaded = _builtin_split(name, split, data_root, source)
    if loaded.paths is not None:
        size = trained.normalization["size"]
        return FileStore(loaded.paths, None, size, trained.in_channels), loaded.targets
    return ArrayStore(loaded.images), loaded.targets
