"""rmlc.train.fit: training on images in memory, and the model it returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from rmlc.cli import main
from rmlc.data import fashion_mosaic
from rmlc.inference import load_trained_model
from rmlc.metrics import mean_average_precision
from rmlc.train import fit

SETTINGS = {"backbone": "small-cnn", "width": 4, "epochs": 2, "batch_size": 32, "lr": 0.006}
SETTINGS |= {"progress": False, "tensorboard": False, "validation_fraction": 0.2}


@pytest.fixture(scope="module")
def mosaics():
    images, targets = fashion_mosaic("train", source="embedded", seed=0)
    test_images, test_targets = fashion_mosaic("test", source="embedded", seed=0)
    return images[:600], targets[:600], test_images[:200], test_targets[:200]


def test_fit_learns_and_its_model_scores_predicts_and_saves(mosaics, tmp_path) -> None:
    images, targets, test_images, test_targets = mosaics
    model = fit(
        images, targets, test=(test_images, test_targets), out=str(tmp_path / "run"), **SETTINGS
    )
    scores = model.scores(test_images)
    assert scores.shape == (200, 10)
    assert mean_average_precision(scores, test_targets) > 30.0  # chance is ~24
    tags = model.predict(test_images)
    np.testing.assert_array_equal(tags, (scores >= 0).astype(np.int64))
    model.save(tmp_path / "model.pt")
    again = load_trained_model(tmp_path / "model.pt")
    np.testing.assert_array_equal(again.scores(test_images), scores)
    assert again.config["dataset"] == "arrays" and again.config["loss"] == "rmlc"
    # the saved checkpoint is one `rmlc predict` reads
    folder = tmp_path / "images"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(test_images[i, 0]).save(folder / f"{i}.png")
    code = main(
        [
            "predict",
            "--checkpoint",
            str(tmp_path / "model.pt"),
            "--images",
            str(folder),
            "--out",
            str(tmp_path / "tags.csv"),
        ]
    )
    assert code == 0
    assert len((tmp_path / "tags.csv").read_text().splitlines()) == 4


def test_floats_tensors_and_datasets_are_the_same_images(mosaics, tmp_path) -> None:
    """uint8 arrays, float tensors in [0, 1] and a Dataset of pairs train the same network
    (on 64 images: two steps of 32 after the validation split)."""
    images, targets, _, _ = mosaics
    images, targets = images[:80], targets[:80]
    settings = {**SETTINGS, "epochs": 1}
    as_uint8 = fit(images, targets, out=str(tmp_path / "a"), **settings)
    floats = torch.from_numpy(images).float() / 255
    as_float = fit(floats, torch.from_numpy(targets), out=str(tmp_path / "b"), **settings)
    dataset = TensorDataset(torch.from_numpy(images[:, 0]), torch.from_numpy(targets))
    as_dataset = fit(dataset, out=str(tmp_path / "c"), **settings)
    reference = as_uint8.scores(images[:20])
    np.testing.assert_array_equal(as_float.scores(images[:20]), reference)
    np.testing.assert_array_equal(as_dataset.scores(images[:20]), reference)


@pytest.mark.parametrize(
    ("images", "targets", "message"),
    [
        (np.zeros((4, 1, 8, 8), np.float32) + 2.0, np.eye(4), r"must lie in \[0, 1\]"),
        (np.zeros((4, 8), np.uint8), np.eye(4), r"must be \(N, C, H, W\) or \(N, H, W\)"),
        (np.zeros((4, 8, 8), np.int32), np.eye(4), "must be uint8"),
        (np.zeros((4, 8, 8), np.uint8), np.eye(3), r"targets must be \(N, m\) with N = 4"),
        (np.zeros((4, 8, 8), np.uint8), np.eye(4) * 2, "targets must be 0 or 1"),
        (np.zeros((4, 8, 8), np.uint8), None, "targets are required"),
    ],
)
def test_bad_arrays_are_named(images, targets, message, tmp_path) -> None:
    with pytest.raises(ValueError, match=message):
        fit(images, targets, out=str(tmp_path / "run"), **SETTINGS)
    assert not (tmp_path / "run").exists()
