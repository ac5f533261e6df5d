"""CIFAR-10 and STL-10 as uint8 arrays, read through torchvision's dataset classes.

Both datasets are read from their official on-disk layouts by
:class:`torchvision.datasets.CIFAR10` and :class:`torchvision.datasets.STL10`
(``root/cifar-10-batches-py`` with the python pickle batches; ``root/stl10_binary`` with
the ``.bin`` files), downloaded there by torchvision with ``download=True``.

torchvision checks every file's MD5 checksum against the official release when it opens
CIFAR-10 (always) and STL-10 (when ``download=False``). ``verify=True`` (the default)
keeps that check; ``verify=False`` uses subclasses whose checksums are None, so that
torchvision only checks that the files exist -- for copies you trust (skipping the MD5 of
STL-10's 2.6 GB unlabeled file) and for small test fixtures. Before calling torchvision,
the loaders check the files themselves and raise errors that name the file: missing files
(``FileNotFoundError``), and for STL-10 sizes that are not whole images, label counts that
differ from image counts, labels outside 1..10 and bad ``fold_indices.txt`` lines.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from rmlc.checks import ParameterError, check_choice, check_integer
from rmlc.data._common import PathLike, as_path, shorten

__all__ = ["CIFAR10_CLASSES", "STL10_CLASSES", "LabeledImages", "load_cifar10", "load_stl10"]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
STL10_CLASSES = (
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
)
STL10Split = Literal["train", "test", "unlabeled", "train+unlabeled"]
_STL_IMAGE_BYTES = 3 * 96 * 96


class LabeledImages(NamedTuple):
    """Images with single-label classes.

    Attributes:
        images: uint8 ``(N, 3, H, W)``.
        labels: int64 ``(N,)`` class indices; -1 for unlabeled images.
        classes: class names.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]


def _unchecked(base: type, name: str) -> type:
    """Subclass of a torchvision dataset whose MD5 checksums are None (existence only)."""
    attributes: dict[str, object] = {
        "train_list": [[filename, None] for filename, _ in base.train_list],
        "test_list": [[filename, None] for filename, _ in base.test_list],
        "__doc__": f"{base.__name__} that checks that its files exist but not their MD5.",
    }
    if hasattr(base, "meta"):
        attributes["meta"] = {**base.meta, "md5": None}
    return type(name, (base,), attributes)


def _missing(folder: Path, names: list[str], dataset: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset} files missing in {folder}: {shorten(names)}. Download the official "
        f"release there, or call with download=True to let torchvision download it."
    )


def _md5_failures(folder: Path, files: list[list[str]]) -> list[str]:
    from torchvision.datasets.utils import check_integrity

    return [name for name, md5 in files if not check_integrity(str(folder / name), md5)]


def load_cifar10(
    root: PathLike, train: bool = True, download: bool = False, verify: bool = True
) -> LabeledImages:
    """Load CIFAR-10 (``root/cifar-10-batches-py``) through torchvision.

    Args:
        root: folder holding ``cifar-10-batches-py`` (or where to download it).
        train: the 50,000 training images (else the 10,000 test images).
        download: download the dataset with torchvision if missing.
        verify: check the files' MD5 against the official release (torchvision's check);
            False checks only that they exist.

    Returns:
        :class:`LabeledImages` with uint8 ``(N, 3, 32, 32)`` images.
    """
    from torchvision.datasets import CIFAR10

    root = as_path(root, "root")
    folder = root / CIFAR10.base_folder
    expected = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    expected.append(CIFAR10.meta["filename"])
    if not download:
        missing = [name for name in expected if not (folder / name).is_file()]
        if missing:
            raise _missing(folder, missing, "CIFAR-10")
    cls = CIFAR10 if verify else _unchecked(CIFAR10, "UncheckedCIFAR10")
    try:
        dataset = cls(str(root), train=train, download=download)
    except RuntimeError as error:
        if not verify:
            raise
        files = [*CIFAR10.train_list, *CIFAR10.test_list]
        files.append([CIFAR10.meta["filename"], CIFAR10.meta["md5"]])
        failed = _md5_failures(folder, files)
        raise ValueError(
            f"CIFAR-10 files in {folder} fail torchvision's MD5 check against the official "
            f"release: {shorten(failed)}; re-download them, or pass verify=False to skip "
            "the check for a copy you trust"
        ) from error
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
        raise ValueError(
            f"CIFAR-10 files in {folder} are not valid python pickle batches "
            f"({type(error).__name__}: {error})"
        ) from error
    images = np.ascontiguousarray(np.asarray(dataset.data, dtype=np.uint8).transpose(0, 3, 1, 2))
    labels = np.asarray(dataset.targets, dtype=np.int64)
    return LabeledImages(images, labels, [str(name) for name in dataset.classes])


def _stl_count(path: Path) -> int:
    size = path.stat().st_size
    if size % _STL_IMAGE_BYTES:
        raise ValueError(
            f"{path}: {size} bytes is not a whole number of 3x96x96 images "
            f"({_STL_IMAGE_BYTES} bytes each)"
        )
    return size // _STL_IMAGE_BYTES


def _check_stl_labels(images_path: Path, labels_path: Path) -> None:
    count = _stl_count(images_path)
    labels = np.fromfile(labels_path, dtype=np.uint8)
    if labels.size != count:
        raise ValueError(
            f"{labels_path} holds {labels.size} labels but {images_path} holds {count} images"
        )
    bad = np.flatnonzero((labels < 1) | (labels > 10))
    if bad.size:
        raise ValueError(
            f"{labels_path}: labels must be 1..10, found {labels[bad[0]]} at position {bad[0]}"
        )


def _check_stl_folds(path: Path, fold: int, count: int) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"STL-10 fold file missing: {path}")
    lines = path.read_text().splitlines()
    if len(lines) <= fold:
        raise ValueError(f"{path}: fold {fold} requested but the file has {len(lines)} lines")
    try:
        indices = np.array(lines[fold].split(), dtype=np.int64)
    except ValueError as error:
        raise ValueError(f"{path}: line {fold + 1} is not whitespace-separated integers") from error
    bad = indices[(indices < 0) | (indices >= count)]
    if bad.size:
        raise ValueError(
            f"{path}: line {fold + 1}: index {bad[0]} out of range for {count} training images"
        )


def load_stl10(
    root: PathLike,
    split: STL10Split = "train",
    folds: int | None = None,
    download: bool = False,
    verify: bool = True,
) -> LabeledImages:
    """Load STL-10 (``root/stl10_binary``) through torchvision.

    Args:
        root: folder holding ``stl10_binary`` (or where to download it).
        split: ``"train"`` (5,000 labeled), ``"test"`` (8,000), ``"unlabeled"`` (100,000
            images from inside and outside the 10 classes, labels -1) or
            ``"train+unlabeled"``.
        folds: with a training split, ``i`` in 0..9 keeps the 1,000 labeled training
            images of the predefined fold ``i`` (line ``i`` of ``fold_indices.txt``).
        download: download the dataset with torchvision if missing.
        verify: check the files' MD5 against the official release (torchvision's check);
            False checks only that they exist.

    Returns:
        :class:`LabeledImages` with uint8 ``(N, 3, 96, 96)`` images, labels 0..9 or -1.
    """
    from torchvision.datasets import STL10

    root = as_path(root, "root")
    check_choice(split, tuple(STL10.splits), "split")
    if folds is not None:
        if check_integer(folds, "folds", 0) > 9:
            raise ParameterError(f"folds must be an integer in 0..9; got {folds!r}")
        if split not in ("train", "train+unlabeled"):
            raise ValueError(f"folds applies to the training split only, not split={split!r}")
    folder = root / STL10.base_folder
    if not download:
        expected = [name for name, _ in STL10.train_list + STL10.test_list]
        missing = [name for name in expected if not (folder / name).is_file()]
        if missing:
            raise _missing(folder, missing, "STL-10")
        _check_stl_labels(folder / "train_X.bin", folder / "train_y.bin")
        _check_stl_labels(folder / "test_X.bin", folder / "test_y.bin")
        _stl_count(folder / "unlabeled_X.bin")
        if folds is not None:
            count = _stl_count(folder / "train_X.bin")
            _check_stl_folds(folder / STL10.folds_list_file, folds, count)
    cls = STL10 if verify else _unchecked(STL10, "UncheckedSTL10")
    try:
        dataset = cls(str(root), split=split, folds=folds, download=download)
    except RuntimeError as error:
        if not verify:
            raise
        failed = _md5_failures(folder, [*STL10.train_list, *STL10.test_list])
        raise ValueError(
            f"STL-10 files in {folder} fail torchvision's MD5 check against the official "
            f"release: {shorten(failed)}; re-download them, or pass verify=False to skip "
            "the check for a copy you trust"
        ) from error
    images = np.ascontiguousarray(np.asarray(dataset.data, dtype=np.uint8))
    labels = np.asarray(dataset.labels, dtype=np.int64)
    classes = [str(name) for name in getattr(dataset, "classes", STL10_CLASSES)]
    return LabeledImages(images, labels, classes)
