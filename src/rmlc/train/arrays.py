"""Training on images held in memory: :func:`fit`, the Python entry point without files.

``fit(images, targets)`` takes arrays, tensors or a map-style ``Dataset`` of
``(image, target)`` pairs, trains as ``rmlc train`` does (any :class:`TrainConfig` key) and
returns the trained :class:`~rmlc.train.trained.TrainedModel`, whose ``scores``, ``predict``
and ``save`` take and write the same forms. Its checkpoints go to ``config.out`` as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rmlc.train.config import TrainConfig
from rmlc.train.datasets import training_data
from rmlc.train.launch import build_trainer, run_with
from rmlc.train.sources import SourceRows
from rmlc.train.trained import TrainedModel, as_uint8_images, load_trained_model

__all__ = ["fit"]

IN_MEMORY = "arrays"  # the ``dataset`` a run of :func:`fit` records in its checkpoints


def fit(
    images: Any,
    targets: Any = None,
    *,
    unlabeled: Any = None,
    test: tuple[Any, Any] | None = None,
    class_names: list[str] | None = None,
    **config: Any,
) -> TrainedModel:
    """Train a network on images in memory and return it (its best epoch on validation).

    Args:
        images: ``(N, C, H, W)`` or ``(N, H, W)`` images: uint8 (0-255) or floating (0-1)
            arrays or tensors; or a map-style ``Dataset`` of ``(image, target)`` pairs
            (then ``targets`` is None).
        targets: ``(N, m)`` 0/1 labels (multi-label), or ``(N,)`` class indices.
        unlabeled: images without labels, in the same forms, for ``semi_supervised=True``.
        test: ``(images, targets)`` evaluated after training (metrics in ``out``).
        class_names: the ``m`` label names (default ``"0"`` ... ``"m-1"``).
        config: any :class:`~rmlc.train.TrainConfig` key, e.g. ``loss``, ``epochs``,
            ``backbone``, ``out`` (where checkpoints and logs go; default ``runs/rmlc``);
            the data options (``num_labeled``, ``subsample``, ``label_noise``,
            ``missing_labels``, ``max_unlabeled``) apply to the arrays as to any source
            (:mod:`rmlc.train.protocol`; ``classes`` needs class labels: refused).

    Returns:
        the trained model: ``scores(images)`` ``(n, m)``, ``predict(images)`` 0/1 tags,
        ``save(path)`` a checkpoint that ``rmlc predict`` and ``rmlc evaluate`` read.

    Raises:
        ValueError: images or targets of the wrong shape, type or range.
    """
    images, targets = _images_and_targets(images, targets, "images")
    store_images = images
    unlabeled_rows = np.arange(0)
    if unlabeled is not None:
        extra = as_uint8_images(unlabeled, "unlabeled")
        _check_same_shape(extra, images, "unlabeled")
        store_images = torch.cat([images, extra])
        unlabeled_rows = np.arange(len(images), len(store_images))
    all_targets = np.zeros((len(store_images), targets.shape[1]), dtype=np.float32)
    all_targets[: len(images)] = targets
    test_split = None
    if test is not None:
        test_images, test_targets = _images_and_targets(*test, "test images")
        _check_same_shape(test_images, images, "test images")
        if test_targets.shape[1] != targets.shape[1]:
            raise ValueError(
                f"test targets have {test_targets.shape[1]} labels, training targets "
                f"{targets.shape[1]}"
            )
        test_split = (test_images, test_targets)
    names = (
        list(class_names) if class_names is not None else [str(j) for j in range(targets.shape[1])]
    )
    if len(names) != targets.shape[1]:
        raise ValueError(f"class_names has {len(names)} names for {targets.shape[1]} labels")
    settings = TrainConfig.from_dict({**config, "dataset": IN_MEMORY}, source="rmlc.train.fit")
    rows = SourceRows(
        images=store_images,
        targets=all_targets,
        classes=names,
        test=test_split,
        labeled=np.arange(len(images)),
        unlabeled=unlabeled_rows,
    )
    data = training_data(rows, settings)  # the protocol of every source: num_labeled ...
    run_with(settings, lambda context: build_trainer(settings, context, data).fit())
    out = Path(settings.out)
    best = out / "best.pt"
    return load_trained_model(best if best.is_file() else out / "last.pt")


def _images_and_targets(images: Any, targets: Any, name: str) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 ``(N, C, H, W)`` images and float32 ``(N, m)`` 0/1 targets."""
    if isinstance(images, Dataset):
        if targets is not None:
            raise ValueError(f"{name}: a Dataset brings its own targets; leave targets=None")
        pairs = [images[i] for i in range(len(images))]  # type: ignore[arg-type]
        if not pairs:
            raise ValueError(f"{name}: the Dataset is empty")
        images = [torch.as_tensor(np.asarray(image)) for image, _ in pairs]
        targets = np.stack([np.asarray(target) for _, target in pairs])
        images = torch.stack(images)
    if targets is None:
        raise ValueError(f"{name}: targets are required for arrays and tensors")
    pixels = as_uint8_images(images, name)
    labels = np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets)
    if labels.ndim == 1:  # class indices
        if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
            raise ValueError(f"{name}: 1-D targets must be class indices >= 0")
        labels = np.eye(int(labels.max()) + 1, dtype=np.float32)[labels]
    if labels.ndim != 2 or len(labels) != len(pixels):
        raise ValueError(
            f"{name}: targets must be (N, m) with N = {len(pixels)} images; got shape "
            f"{labels.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{name}: targets must be 0 or 1")
    return pixels, labels.astype(np.float32)


def _check_same_shape(images: torch.Tensor, reference: torch.Tensor, name: str) -> None:
    if images.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"{name} are {tuple(images.shape[1:])} (C, H, W), training images "
            f"{tuple(reference.shape[1:])}"
        )
