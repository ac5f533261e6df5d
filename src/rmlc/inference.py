"""Using a trained network: load a checkpoint, score images, write tags, extract features."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from rmlc.atomic import atomic_write_text
from rmlc.data.shards import ShardSet
from rmlc.train.data import FileStore, ShardStore
from rmlc.train.trained import TrainedModel, as_uint8_images, load_trained_model, score_images

__all__ = [
    "IMAGE_EXTENSIONS",
    "TrainedModel",
    "as_uint8_images",
    "find_images",
    "load_trained_model",
    "score_images",
    "write_predictions",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def find_images(directory: str | Path) -> list[Path]:
    """Image files of a folder and its subfolders, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"image folder not found: {directory}")
    paths = sorted(path for path in directory.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found in {directory}"
        )
    return paths


def file_store(trained: TrainedModel, paths: list[Path]) -> FileStore:
    """A store reading ``paths`` the way the model was trained (channels, size)."""
    return FileStore(paths, None, trained.normalization["size"], trained.in_channels)


def shard_store(trained: TrainedModel, shards: ShardSet) -> ShardStore:
    """A store reading a shard folder's images the way the model was trained."""
    return ShardStore(shards, trained.normalization["size"], trained.in_channels)


def write_predictions(
    path: str | Path,
    images: list[str],
    scores: np.ndarray,
    class_names: list[str],
    k: int = 3,
    threshold: float | None = 0.0,
) -> None:
    """Write each image's top-k labels with scores and its thresholded labels.

    ``.csv``: columns ``image, topk, topk_scores, labels`` (lists joined by ``|``);
    ``.json``: a list of ``{"image", "topk": [{"label", "score"}], "labels"}``.
    """
    path = Path(path)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = []
    for image, row, top in zip(images, scores, order, strict=True):
        positive = (
            [] if threshold is None else [class_names[j] for j in np.flatnonzero(row >= threshold)]
        )
        rows.append(
            {
                "image": image,
                "topk": [{"label": class_names[j], "score": float(row[j])} for j in top],
                "labels": positive,
            }
        )
    if path.suffix.lower() == ".json":
        atomic_write_text(json.dumps(rows, indent=2), path)
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["image", "topk", "topk_scores", "labels"])
        for row in rows:
            writer.writerow(
                [
                    row["image"],
                    "|".join(item["label"] for item in row["topk"]),
                    "|".join(f"{item['score']:.6g}" for item in row["topk"]),
                    "|".join(row["labels"]),
                ]
            )
        atomic_write_text(buffer.getvalue(), path)
    else:
        raise ValueError(f"output must end in .csv or .json, got {path}")
