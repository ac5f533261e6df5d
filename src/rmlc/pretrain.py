"""Self-supervised pretraining of the small CNN, offline: the stand-in for ImageNet weights.

The paper fine-tuned ImageNet weights; none can be had offline, and weights trained on the
evaluated task's labels would not be a fair stand-in. Here the backbone learns to tell by
how much an image was rotated (0, 90, 180 or 270 degrees; Gidaris et al., 2018), from
images alone: no label of any task is read. The result is an rmlc checkpoint that
``--weights PATH`` (or ``--pretrained`` for the shipped widths) loads into the backbone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rmlc.atomic import atomic_write
from rmlc.models import MultiLabelNet, SmallCNN, shipped_weights
from rmlc.train.data import BatchPreparation

__all__ = ["ROTATIONS", "rotate_batch", "rotation_pretrain", "save_pretrained", "shipped_weights"]

ROTATIONS = 4  # quarter turns: the pretext task's classes


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in every quarter turn.

    Args:
        images: ``(N, C, H, W)`` with ``H == W``.

    Returns:
        ``(4 N, C, H, W)`` images and ``(4 N,)`` int64 turn counts 0..3.
    """
    turned = [torch.rot90(images, turns, dims=(-2, -1)) for turns in range(ROTATIONS)]
    labels = torch.arange(ROTATIONS).repeat_interleave(len(images))
    return torch.cat(turned), labels


def rotation_pretrain(
    images: np.ndarray | torch.Tensor,
    *,
    width: int = 16,
    norm: str = "batch",
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> tuple[MultiLabelNet, dict[str, Any]]:
    """Train a small CNN to predict the rotation of unlabeled images.

    Args:
        images: ``(N, C, H, W)`` or ``(N, H, W)`` uint8 square images (no labels are used).
        width: of the :class:`~rmlc.models.SmallCNN`.
        norm: of the :class:`~rmlc.models.SmallCNN`.
        epochs: of SGD with momentum 0.9, weight decay 5e-4, cosine schedule.
        batch_size: of that SGD.
        lr: its learning rate.

    Returns:
        ``(network, info)``: the network (its classifier has the 4 rotation outputs) and
        what was trained (normalisation, sizes, the last epoch's rotation accuracy).
    """
    images = torch.as_tensor(np.asarray(images))
    if images.dim() == 3:  # (N, H, W) grayscale
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.dtype != torch.uint8 or images.shape[-1] != images.shape[-2]:
        raise ValueError(
            f"images must be (N, C, H, W) uint8 and square, got {tuple(images.shape)} "
            f"{images.dtype}"
        )
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    as_float = images.float() / 255.0
    mean = as_float.mean(dim=(0, 2, 3)).tolist()
    std = as_float.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()
    prepare = BatchPreparation(mean, std)
    backbone = SmallCNN(images.shape[1], width, norm)
    network = MultiLabelNet(backbone, backbone.out_features, ROTATIONS, "small-cnn")
    optimizer = torch.optim.SGD(network.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    loss_fn = nn.CrossEntropyLoss()
    accuracy = 0.0
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        correct = seen = 0
        network.train()
        for start in range(0, len(images), batch_size):
            batch = prepare(images[order[start : start + batch_size]])  # no flips: they
            # would make quarter and three-quarter turns of symmetric images alike
            turned, labels = rotate_batch(batch)
            logits = network(turned)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(dim=1) == labels).sum())
            seen += len(labels)
        accuracy = 100.0 * correct / seen
        if progress:
            print(f"pretrain epoch {epoch + 1}/{epochs}: rotation accuracy {accuracy:.1f}%")
    info = {
        "task": "rotation (self-supervised, no labels)",
        "images": len(images),
        "image_size": int(images.shape[-1]),
        "width": width,
        "norm": norm,
        "epochs": epochs,
        "seed": seed,
        "normalization": {"mean": mean, "std": std},
        "rotation_accuracy": accuracy,
    }
    return network.eval(), info


def save_pretrained(network: MultiLabelNet, info: dict[str, Any], path: str | Path) -> Path:
    """Write the backbone as an rmlc checkpoint that ``--weights`` reads (atomically)."""
    path = Path(path)
    state = {
        "model": {f"backbone.{k}": v for k, v in network.backbone.state_dict().items()},
        "backbone": "small-cnn",
        "pretraining": info,
    }
    atomic_write(path, lambda stream: torch.save(state, stream))
    return path
