"""Images and targets as the trainer sees them: stores, views, batch preparation, builders.

A *store* holds images (an in-memory uint8 array, or image files or WebDataset shards read
on demand); a *view* picks rows of a store and returns ``(uint8 image, position)``; batches
are augmented and normalised on the training device by :class:`BatchPreparation`. The trainer keeps
the targets itself, indexed by position, so propagated labels can change without touching
the datasets; they are sparse (:class:`~rmlc.train.targets.SparseTargets`) and densified one
batch at a time. :func:`assemble` splits a store's rows into the :class:`TrainingData` the
trainer takes (:mod:`rmlc.train.datasets` loads each built-in dataset and tags tables).
"""

from __future__ import annotations

import io
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from rmlc.data.shards import ShardSet
from rmlc.train.config import TrainConfig
from rmlc.train.image_cache import DecodedImageCache
from rmlc.train.targets import SparseTargets

__all__ = [
    "ArrayStore",
    "BatchPreparation",
    "FileStore",
    "ImageStore",
    "ImageView",
    "ShardStore",
    "TrainingData",
]

_OPEN_SHARDS = 16  # shard files a process keeps open at once (least recently read closed)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ArrayStore:
    """Images held in memory: ``(N, C, H, W)`` uint8."""

    def __init__(self, images: np.ndarray | torch.Tensor) -> None:
        images = torch.as_tensor(images)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 (N, C, H, W) or (N, H, W), got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, row: int) -> torch.Tensor:
        return self.images[row]

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def decode_image(source: Path | BinaryIO, size: int, channels: int, name: str) -> torch.Tensor:
    """``(channels, size, size)`` uint8 image of a file or of bytes (``name`` for messages)."""
    try:
        with Image.open(source) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            image = image.resize((size, size), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {name}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image {name}: {error}") from None
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


class _EncodedStore:
    """Encoded images decoded on demand, through an optional decoded-image cache."""

    size: int
    channels: int
    cache: DecodedImageCache | None

    def _decode_row(self, row: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, row: int) -> torch.Tensor:
        if self.cache is not None and (cached := self.cache.get(row)) is not None:
            return cached
        if self.cache is None:
            return self._decode_row(row)
        stamp = self.cache.stamp(row)  # before decoding: a change while decoding re-decodes
        image = self._decode_row(row)
        self.cache.put(row, image, stamp)
        return image


class FileStore(_EncodedStore):
    """Images read from files on demand, converted to ``channels`` and resized.

    Args:
        paths: image paths, relative to ``root`` unless absolute.
        root: directory the paths are relative to.
        size: side of the square the images are resized to.
        channels: 3 (RGB) or 1 (grayscale).
        cache: a folder for a :class:`~rmlc.train.image_cache.DecodedImageCache`: each file
            is decoded once, later reads come from a memory-mapped array (None: no cache).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        root: str | Path | None,
        size: int,
        channels: int = 3,
        cache: str | Path | None = None,
    ) -> None:
        self.paths = [Path(root or ".") / path for path in paths]
        self.size, self.channels = size, channels
        self.cache = None if cache is None else DecodedImageCache(cache, self.paths, size, channels)

    def __len__(self) -> int:
        return len(self.paths)

    def _decode_row(self, row: int) -> torch.Tensor:
        return self._decode(self.paths[row])

    def _decode(self, path: Path) -> torch.Tensor:
        """``(C, size, size)`` uint8 image of one file."""
        return decode_image(path, self.size, self.channels, str(path))


class ShardStore(_EncodedStore):
    """Images read from WebDataset tar shards by position (:mod:`rmlc.data.shards`).

    Sample ``row`` is read at its recorded byte offset in its shard (one seek and one read;
    each process opens the shard files itself) and decoded as :class:`FileStore` decodes a
    file. With ``cache``, a row is keyed by its shard file's size and modification time.

    Args:
        shards: the indexed samples (:func:`rmlc.data.read_shards`).
        size: side of the square the images are resized to.
        channels: 3 (RGB) or 1 (grayscale).
        cache: a folder for a :class:`~rmlc.train.image_cache.DecodedImageCache`.
    """

    def __init__(
        self, shards: ShardSet, size: int, channels: int = 3, cache: str | Path | None = None
    ) -> None:
        self.shards = shards
        self.size, self.channels = size, channels
        self.cache = None
        if cache is not None:  # a row is keyed by its shard file
            files = [shards.files[int(shard)] for shard in shards.members[:, 0]]
            self.cache = DecodedImageCache(cache, files, size, channels)
        self._handles: OrderedDict[int, BinaryIO] = OrderedDict()  # least recent first
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.shards)

    def read(self, row: int) -> bytes:
        """The encoded bytes of sample ``row``'s image, as they were stored."""
        shard, offset, length = (int(value) for value in self.shards.members[row])
        if self._pid != os.getpid():  # a forked worker: never share a parent's file offsets
            self._handles, self._pid = OrderedDict(), os.getpid()
        handle = self._handles.get(shard)
        if handle is None:
            if len(self._handles) >= _OPEN_SHARDS:  # bounded: a run may read 10,000 shards
                self._handles.popitem(last=False)[1].close()
            handle = self._handles[shard] = open(self.shards.files[shard], "rb")  # noqa: SIM115
        else:
            self._handles.move_to_end(shard)
        handle.seek(offset)
        data = handle.read(length)
        if len(data) != length:
            raise ValueError(
                f"{self.shards.describe(row)}: the shard ends before the image does; it "
                "changed since it was indexed"
            )
        return data

    def _decode_row(self, row: int) -> torch.Tensor:
        data = io.BytesIO(self.read(row))
        return decode_image(data, self.size, self.channels, self.shards.describe(row))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}  # each process opens the shards itself


ImageStore = ArrayStore | FileStore | ShardStore


class ImageView(Dataset):
    """Rows of a store: item ``p`` is ``(store[rows[p]], p)``, a uint8 ``(C, H, W)`` image.

    The trainer batches, moves, augments and normalises them with :class:`BatchPreparation`.
    """

    def __init__(self, store: ImageStore, rows: Sequence[int] | torch.Tensor | None = None) -> None:
        self.store = store
        self.rows = torch.arange(len(store)) if rows is None else torch.as_tensor(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int]:
        return self.store[int(self.rows[position])], position


class BatchPreparation:
    """uint8 image batches -> normalised float batches, with augmentation for training.

    Augmentation works on whole batches on the training device (fast on CPU and GPU):
    reflection padding by ``size // 8``, a random crop back to the original size per image,
    and a random horizontal flip per image. Its randomness comes from the global torch
    generator, which the trainer seeds per epoch and step.

    Args:
        mean: per-channel mean of the normalisation.
        std: per-channel standard deviation of the normalisation.
        size: side the images are resized to (bilinear) when they differ, e.g. the paper's
            256 x 256 CIFAR-10 images for ResNet-101; None keeps them as they are.
    """

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], size: int | None = None
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.size = size

    def __call__(self, images: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """``(N, C, H, W)`` uint8 (any device) -> normalised float32 on the same device."""
        batch = images.float().div_(255.0)
        if self.size is not None and tuple(batch.shape[-2:]) != (self.size, self.size):
            batch = torch.nn.functional.interpolate(
                batch, size=(self.size, self.size), mode="bilinear", align_corners=False
            )
        if augment:
            batch = self.augment(batch)
        mean, std = self.mean.to(batch.device), self.std.to(batch.device)
        return batch.sub_(mean).div_(std)

    @staticmethod
    def augment(batch: torch.Tensor) -> torch.Tensor:
        n, _, height, width = batch.shape
        pad = max(min(height, width) // 8, 1)
        padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad), mode="reflect")
        top = torch.randint(0, 2 * pad + 1, (n,)).tolist()
        left = torch.randint(0, 2 * pad + 1, (n,)).tolist()
        flip = (torch.rand(n) < 0.5).tolist()
        crops = []
        for image, y, x, mirrored in zip(padded, top, left, flip, strict=True):
            crop = image[:, y : y + height, x : x + width]
            crops.append(crop.flip(-1) if mirrored else crop)
        return torch.stack(crops)


@dataclass
class TrainingData:
    """What the trainer trains and evaluates on.

    Attributes:
        train: view of the training pool (labeled and unlabeled).
        targets: ``(n_pool, m)`` 0/1 targets of the pool (none positive for unlabeled
            samples), sparse.
        labeled: positions of labeled samples in the pool.
        unlabeled: positions of unlabeled samples in the pool.
        validation: ``(view, targets)`` carved from the labeled data, or None.
        test: ``(view, targets)``, or None.
        class_names: the ``m`` label names.
        in_channels: image channels.
        single_label: every labeled sample has exactly one positive (accuracy applies).
        normalization: ``{"mean": ..., "std": ..., "size": ...}`` of the images.
        unlabeled_classes: true class of each unlabeled sample when known (analysis only,
            never used in training), else None.
        clean_targets: ``(len(labeled), m)`` targets of the labeled training samples before
            label noise or dropped tags were applied (analysis only: the trainer measures
            how far it fits the corrupted labels), else None.
        rows: how the rows of each tags table were used (:mod:`rmlc.train.accounting`),
            or None for data that is not a tags table.
    """

    train: ImageView
    targets: SparseTargets
    labeled: torch.Tensor
    unlabeled: torch.Tensor
    validation: tuple[ImageView, SparseTargets] | None
    test: tuple[ImageView, SparseTargets] | None
    class_names: list[str]
    in_channels: int
    single_label: bool
    normalization: dict = field(default_factory=dict)
    unlabeled_classes: torch.Tensor | None = None
    clean_targets: torch.Tensor | None = None
    rows: list | None = None  # of rmlc.train.accounting.TableRows


def _channel_statistics(store: ArrayStore, limit: int = 5000) -> tuple[list[float], list[float]]:
    sample = store.images[:limit].float() / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return mean.tolist(), std.tolist()


Targets = np.ndarray | torch.Tensor | scipy.sparse.csr_array


def _pool_targets(labeled: SparseTargets, none: scipy.sparse.csr_array) -> SparseTargets:
    """The labeled training rows' targets, then the unlabeled rows' (``none``: empty, and
    nothing of them known where tags can be unknown, until propagation fills them)."""
    negatives = None
    if labeled.negatives is not None:
        negatives = scipy.sparse.vstack([labeled.negatives, none], "csr")
    return SparseTargets(scipy.sparse.vstack([labeled.matrix, none], "csr"), negatives)


def _warn_unseen(
    labeled: SparseTargets, class_names: Sequence[str], unknown_left_out: bool
) -> None:
    """Warn about the classes the loss never sees positive, and (with unknown tags left out
    of the loss) those it never sees negative."""
    never = [
        name
        for name, count in zip(class_names, labeled.positives_per_class(), strict=True)
        if count == 0
    ]
    if never:
        warnings.warn(
            f"class(es) never positive in the labeled training data: {', '.join(never[:10])}"
            f"{' ...' if len(never) > 10 else ''}; they are learned as always negative and "
            "left out of the per-class metrics",
            stacklevel=4,
        )
    if unknown_left_out:
        _warn_unverified(labeled, class_names)


def _warn_unverified(labeled: SparseTargets, class_names: Sequence[str]) -> None:
    """Warn about the classes no labeled training image verifies absent: with unknown tags
    left out of the loss, the loss never sees them negative."""
    negatives = labeled.negatives
    counts = (
        np.zeros(labeled.num_classes)
        if negatives is None
        else np.asarray(negatives.sum(axis=0)).ravel()
    )
    unverified = [name for name, count in zip(class_names, counts, strict=True) if count == 0]
    if not unverified:
        return
    which = (
        "no tag is verified absent in the labeled training data (single-positive data?)"
        if len(unverified) == len(class_names)
        else f"class(es) never verified absent in the labeled training data: "
        f"{', '.join(unverified[:10])}{' ...' if len(unverified) > 10 else ''}"
    )
    warnings.warn(
        f"{which}; with unknown_tags 'ignore' the loss never sees them negative, so they are "
        "learned as present wherever a positive is (reproduce partial, single positive: "
        "RMLC mAP 25.9, at chance, against 57.8 with unknown_tags 'negative'). Use "
        "unknown_tags 'negative' (--unknown-tags negative: every unknown tag read as absent) "
        "or verify some negatives",
        stacklevel=5,
    )


def assemble(
    store: ImageStore,
    targets: Targets,
    labeled_rows: np.ndarray | torch.Tensor,
    unlabeled_rows: np.ndarray | torch.Tensor,
    test: tuple[ImageStore, Targets] | None,
    class_names: Sequence[str],
    config: TrainConfig,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    clean_targets: np.ndarray | torch.Tensor | None = None,
    negatives: Targets | None = None,
    test_negatives: Targets | None = None,
) -> TrainingData:
    """Split the labeled rows into training and validation, and build the views.

    Args:
        store: training images.
        targets: ``(N, m)`` 0/1 (or -1/+1) targets of the store's rows, dense or SciPy
            sparse; unlabeled rows' targets are not used (but must be in the encoding).
        labeled_rows: rows of the store with labels.
        unlabeled_rows: rows of the store without.
        test: ``(store, targets)`` of the test split.
        clean_targets: ``(N, m)`` targets of the store's rows before corruption, if any.
        negatives, test_negatives: ``(N, m)`` and ``(n_test, m)`` tags verified absent
            (partial labels: the other tags not positive are unknown), or None.
    """
    targets = SparseTargets(targets, negatives)
    labeled_rows = torch.as_tensor(np.asarray(labeled_rows), dtype=torch.int64)
    unlabeled_rows = torch.as_tensor(np.asarray(unlabeled_rows), dtype=torch.int64)
    generator = torch.Generator().manual_seed(config.seed)
    shuffled = labeled_rows[torch.randperm(len(labeled_rows), generator=generator)]
    n_validation = round(config.validation_fraction * len(shuffled))
    validation_rows, train_rows = shuffled[:n_validation], shuffled[n_validation:]
    if len(train_rows) == 0:
        raise ValueError("no labeled training samples are left after the validation split")
    if mean is None or std is None:
        if isinstance(store, ArrayStore):
            mean, std = _channel_statistics(store)
        else:
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if store.channels == 3 else ((0.5,), (0.25,))
    size = (
        (config.image_size or store.images.shape[-1])
        if isinstance(store, ArrayStore)
        else store.size
    )
    pool = torch.cat([train_rows, unlabeled_rows])
    labeled_targets = targets.take(train_rows)
    none = scipy.sparse.csr_array((len(unlabeled_rows), targets.num_classes), dtype=np.uint8)
    pool_targets = _pool_targets(labeled_targets, none)
    partial = labeled_targets.has_negatives or config.single_positive  # unknown tags
    single = not partial and bool((labeled_targets.positives_per_row() == 1).all())
    _warn_unseen(labeled_targets, class_names, partial and config.unknown_tags == "ignore")
    if config.semi_supervised and len(unlabeled_rows) == 0:
        warnings.warn(
            "semi_supervised is on but there are no unlabeled samples: training is supervised",
            stacklevel=3,
        )
    return TrainingData(
        train=ImageView(store, pool),
        targets=pool_targets,
        labeled=torch.arange(len(train_rows)),
        unlabeled=torch.arange(len(train_rows), len(pool)),
        validation=(ImageView(store, validation_rows), targets.take(validation_rows))
        if n_validation
        else None,
        test=None if test is None else (ImageView(test[0]), SparseTargets(test[1], test_negatives)),
        class_names=list(class_names),
        in_channels=store.channels,
        single_label=single,
        normalization={"mean": list(mean), "std": list(std), "size": int(size)},
        clean_targets=None
        if clean_targets is None
        else torch.as_tensor(np.asarray(clean_targets), dtype=torch.float32)[train_rows],
    )
