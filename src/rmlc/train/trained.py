"""A trained network and what is needed to feed it: load, score, predict, save."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rmlc.models import MultiLabelNet, build_model
from rmlc.train.checkpoint import CheckpointError, atomic_save, load_checkpoint
from rmlc.train.data import ArrayStore, BatchPreparation, ImageView

__all__ = ["TrainedModel", "as_uint8_images", "load_trained_model", "score_images"]


def as_uint8_images(images: Any, name: str = "images") -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` tensor of images given as ``(N, C, H, W)`` or ``(N, H, W)``
    uint8 (0-255) or floating (0-1) arrays or tensors.

    Raises:
        ValueError: another shape or dtype, or floating values outside [0, 1].
    """
    tensor = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    tensor = tensor.detach().cpu()
    if tensor.ndim == 3:
        tensor = tensor[:, None]
    if tensor.ndim != 4 or len(tensor) == 0:
        raise ValueError(
            f"{name} must be (N, C, H, W) or (N, H, W) with N >= 1; got shape {tuple(tensor.shape)}"
        )
    if tensor.dtype == torch.uint8:
        return tensor.contiguous()
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be uint8 (0-255) or floating (0-1); got {tensor.dtype}")
    if not bool(torch.isfinite(tensor).all()) or tensor.min() < 0 or tensor.max() > 1:
        raise ValueError(
            f"floating {name} must lie in [0, 1]; got values in [{float(tensor.min())}, "
            f"{float(tensor.max())}] (give uint8 for 0-255)"
        )
    return (tensor.float() * 255).round().to(torch.uint8).contiguous()


@dataclass
class TrainedModel:
    """A network with what is needed to feed it: label names and input normalisation."""

    model: MultiLabelNet
    class_names: list[str]
    normalization: dict[str, Any]
    in_channels: int
    single_label: bool
    config: dict[str, Any] = field(default_factory=dict)
    threshold: float | list[float] = 0.0  # chosen on validation (--threshold auto), or 0

    def view(self, store) -> ImageView:
        """A view of all the images of a store."""
        return ImageView(store)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> the normalised float batch the network expects."""
        preparation = BatchPreparation(
            self.normalization["mean"], self.normalization["std"], self.normalization["size"]
        )
        return preparation(images)

    def scores(self, images: Any, batch_size: int = 128) -> np.ndarray:
        """``(n, m)`` label scores of images in memory (the forms :func:`as_uint8_images`
        takes; grey images are repeated to a colour model's channels), on its device."""
        device = next(self.model.parameters()).device
        pixels = as_uint8_images(images)
        if pixels.shape[1] != self.in_channels:
            if pixels.shape[1] != 1:
                raise ValueError(
                    f"images have {pixels.shape[1]} channels; the model takes "
                    f"{self.in_channels} (or 1, repeated)"
                )
            pixels = pixels.expand(-1, self.in_channels, -1, -1)
        view = ImageView(ArrayStore(pixels))
        return score_images(self, view, device, batch_size)

    def predict(self, images: Any, threshold: float | list[float] | None = None) -> np.ndarray:
        """``(n, m)`` 0/1 tags: scores at or above ``threshold`` (by default the model's:
        chosen on validation, or 0; single-label models: the top-scored class)."""
        scores = self.scores(images)
        if self.single_label:
            return np.eye(scores.shape[1], dtype=np.int64)[scores.argmax(axis=1)]
        threshold = self.threshold if threshold is None else threshold
        return (scores >= np.asarray(threshold)).astype(np.int64)

    def save(self, path: str | Path) -> None:
        """Write a checkpoint that :func:`load_trained_model`, ``rmlc predict`` and ``rmlc
        evaluate`` read (the network and how to feed it; no optimizer state)."""
        atomic_save(
            {
                "model": self.model.state_dict(),
                "backbone": self.model.name,
                "num_classes": self.model.num_classes,
                "class_names": list(self.class_names),
                "in_channels": self.in_channels,
                "normalization": self.normalization,
                "single_label": self.single_label,
                "config": self.config,
                "threshold": self.threshold,
            },
            path,
        )


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild the network of a training checkpoint (``best.pt`` or ``last.pt``)."""
    checkpoint = load_checkpoint(path)
    missing = [key for key in ("backbone", "num_classes", "normalization") if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{path} is not an rmlc training checkpoint: it has no {', '.join(missing)} "
            "(rmlc train, rmlc.train.fit and TrainedModel.save write them)"
        )
    config = checkpoint.get("config", {})
    model = build_model(
        checkpoint["backbone"],
        num_classes=checkpoint["num_classes"],
        in_channels=checkpoint.get("in_channels", 3),
        small_input=config.get("small_input", False),
        width=config.get("width", 16),
        norm=config.get("norm", "batch"),
    )
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:  # missing, unexpected or misshapen weights
        raise CheckpointError(
            f"the weights in {path} do not fit its backbone {checkpoint['backbone']!r}: "
            f"{' '.join(str(error).split())[:500]}"
        ) from None
    model.to(device).eval()
    return TrainedModel(
        model=model,
        class_names=list(checkpoint.get("class_names") or range(checkpoint["num_classes"])),
        normalization=checkpoint["normalization"],
        in_channels=checkpoint.get("in_channels", 3),
        single_label=bool(checkpoint.get("single_label", False)),
        config=config,
        threshold=checkpoint.get("threshold", 0.0),
    )


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
