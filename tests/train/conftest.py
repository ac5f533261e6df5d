"""Tiny real-image data sets written by the tests: mosaics of Fashion-MNIST as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmlc.data import FASHION_MNIST_CLASSES, load_embedded_fashion_mnist, make_mosaics


def write_mosaic_table(folder: Path, name: str, n: int, seed: int, unlabeled: bool = False) -> Path:
    """Write ``n`` 56x56 mosaic PNGs under ``folder/images`` and a tags table for them."""
    images, labels = load_embedded_fashion_mnist("train" if name != "test" else "test")
    mosaics, targets = make_mosaics(images, labels, n, seed=seed, num_classes=10)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = ["image,labels"]
    for index, (mosaic, target) in enumerate(zip(mosaics, targets, strict=True)):
        relative = f"images/{name}-{index:04d}.png"
        Image.fromarray(mosaic[0]).save(folder / relative)
        tags = (
            "" if unlabeled else "|".join(FASHION_MNIST_CLASSES[j] for j in np.flatnonzero(target))
        )
        rows.append(f"{relative},{tags}")
    table = folder / f"{name}.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


@pytest.fixture(scope="session")
def mosaic_tables(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mosaic-tables")
    return {
        "root": folder,
        "train": write_mosaic_table(folder, "train", 96, seed=1),
        "unlabeled": write_mosaic_table(folder, "unlabeled", 64, seed=2, unlabeled=True),
        "test": write_mosaic_table(folder, "test", 48, seed=3),
    }


def tiny_config(tables: dict[str, Path], out: Path, **overrides):
    from rmlc.train import TrainConfig

    values = {
        "dataset": "tags",
        "train": str(tables["train"]),
        "test": str(tables["test"]),
        "image_root": str(tables["root"]),
        "image_size": 32,
        "backbone": "small-cnn",
        "width": 4,
        "epochs": 2,
        "batch_size": 16,
        "lr": 0.01,
        "validation_fraction": 0.25,
        "out": str(out),
        "progress": False,
        "tensorboard": False,
        "num_workers": 0,  # decoding in this process: tests/train/test_trainer.py checks workers
        "device": "cpu",
    }
    values.update(overrides)
    return TrainConfig(**values)
