"""Using a trained network: load a checkpoint, score images, write tags, extract features."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rmlc.models import MultiLabelNet, build_model
from rmlc.train.checkpoint import load_checkpoint
from rmlc.train.data import BatchPreparation, FileStore, ImageView

__all__ = [
    "IMAGE_EXTENSIONS",
    "TrainedModel",
    "find_images",
    "load_trained_model",
    "score_images",
    "write_predictions",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class TrainedModel:
    """A network with what is needed to feed it: label names and input normalisation."""

    model: MultiLabelNet
    class_names: list[str]
    normalization: dict[str, Any]
    in_channels: int
    single_label: bool

    def view(self, store) -> ImageView:
        """A view of all the images of a store."""
        return ImageView(store)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> the normalised float batch the network expects."""
        preparation = BatchPreparation(
            self.normalization["mean"], self.normalization["std"], self.normalization["size"]
        )
        return preparation(images)


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild the network of a training checkpoint (``best.pt`` or ``last.pt``)."""
    checkpoint = load_checkpoint(path)
    config = checkpoint.get("config", {})
    model = build_model(
        checkpoint["backbone"],
        num_classes=checkpoint["num_classes"],
        in_channels=checkpoint.get("in_channels", 3),
        small_input=config.get("small_input", False),
        width=config.get("width", 16),
        norm=config.get("norm", "batch"),
    )
    model.load_state_dict(checkpoint["model"])
    model.to(device).eval()
    return TrainedModel(
        model=model,
        class_names=list(checkpoint.get("class_names") or range(checkpoint["num_classes"])),
        normalization=checkpoint["normalization"],
        in_channels=checkpoint.get("in_channels", 3),
        single_label=bool(checkpoint.get("single_label", False)),
    )


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


@torch.no_grad()
def score_images(
    trained: TrainedModel,
    view: ImageView,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
    features: bool = False,
) -> np.ndarray:
    """Scores ``(n, m)`` (or penultimate features ``(n, d)``) of every image of a view."""
    trained.model.to(device).eval()
    outputs = []
    for images, _ in DataLoader(view, batch_size=batch_size):
        images = trained.prepare(images.to(device))
        output = trained.model.features(images) if features else trained.model(images)
        outputs.append(output.float().cpu())
    return torch.cat(outputs).numpy()


def file_store(trained: TrainedModel, paths: list[Path]) -> FileStore:
    """A store reading ``paths`` the way the model was trained (channels, size)."""
    return FileStore(paths, None, trained.normalization["size"], trained.in_channels)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=2))
    elif path.suffix.lower() == ".csv":
        with path.open("w", newline="") as stream:
            writer = csv.writer(stream)
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
    else:
        raise ValueError(f"output must end in .csv or .json, got {path}")
