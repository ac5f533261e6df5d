"""The registries are the one place a new piece goes: a toy source and a toy loss, each
registered here, train a network for an epoch through ``rmlc.train.run`` and ``rmlc train``,
with every data option meaning what it means for the built-in sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rmlc.losses import LossEntry, MultiLabelLoss, register_loss, unregister_loss
from rmlc.train import TrainConfig, run
from rmlc.train.sources import (
    SOURCES,
    SourceEntry,
    SourceRows,
    register_source,
    source_entry,
    unregister_source,
)

_TOY_CLASSES = ["top", "bottom", "left", "right"]


def _toy_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 1, 12, 12)`` uint8 images, each bright in some of its four halves, and the
    ``(n, 4)`` 0/1 targets naming those halves."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, 4)) < 0.4).astype(np.float32)
    targets[targets.sum(axis=1) == 0, 0] = 1.0
    images = rng.integers(0, 60, size=(n, 1, 12, 12), dtype=np.uint8)
    halves = [np.s_[:6, :], np.s_[6:, :], np.s_[:, :6], np.s_[:, 6:]]
    for row, target in enumerate(targets):
        for j in np.flatnonzero(target):
            images[row, 0][halves[j]] += 150
    return images, targets


def _read_toy(config: TrainConfig) -> SourceRows:
    """80 images, the last 20 given without labels, and a test split of 24."""
    images, targets = _toy_images(80, seed=0)
    targets[60:] = 0
    test_images, test_targets = _toy_images(24, seed=1)
    return SourceRows(
        images=images,
        targets=targets,
        classes=list(_TOY_CLASSES),
        test=(test_images, test_targets),
        unlabeled=np.arange(60, 80),
    )


TOY_SOURCE = SourceEntry("toy-halves", _read_toy, "bright halves of tiny images")


class HalfSquaredLoss(MultiLabelLoss):
    """Half the squared error of the sigmoid scores; counts its calls."""

    calls = 0

    def per_sample(self, logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        HalfSquaredLoss.calls += 1
        return 0.5 * ((torch.sigmoid(logits) - positive) ** 2).sum(dim=1)


TOY_LOSS = LossEntry("toy-half-squared", HalfSquaredLoss, 0.05, "half squared error")


@pytest.fixture
def toy_source():
    register_source(TOY_SOURCE)
    yield TOY_SOURCE
    unregister_source(TOY_SOURCE.name)


@pytest.fixture
def toy_loss():
    HalfSquaredLoss.calls = 0
    register_loss(TOY_LOSS)
    yield TOY_LOSS
    unregister_loss(TOY_LOSS.name)


def _settings(tmp_path, **values) -> dict:
    return {
        "backbone": "small-cnn",
        "width": 4,
        "epochs": 1,
        "batch_size": 16,
        "validation_fraction": 0.25,
        "progress": False,
        "tensorboard": False,
        "out": str(tmp_path / "run"),
        **values,
    }


def test_a_registered_source_trains_an_epoch_with_the_data_options(toy_source, tmp_path) -> None:
    """num_labeled, max_unlabeled and the validation split apply to it as to any source:
    40 of the 60 labeled images keep labels (10 of them validate), the other 20 join the
    20 the source gives unlabeled, and 25 of those 40 are kept."""
    assert SOURCES["toy-halves"] is TOY_SOURCE and source_entry("toy-halves") is TOY_SOURCE
    config = TrainConfig.from_dict(
        _settings(
            tmp_path, dataset="toy-halves", num_labeled=40, semi_supervised=True, max_unlabeled=25
        )
    )
    metrics = run(config)
    assert metrics["rows"] == {"training": 30, "validation": 10, "unlabeled": 25, "test": 24}
    assert metrics["epochs"] == 1 and 0.0 <= metrics["mAP"] <= 100.0
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert checkpoint["class_names"] == _TOY_CLASSES


def test_a_registered_source_and_loss_train_through_the_command_line(
    toy_source, toy_loss, tmp_path
) -> None:
    """``rmlc train --dataset toy-halves --loss toy-half-squared``: the loss is called on
    every batch, and its default learning rate is the run's."""
    from rmlc.cli import main

    settings = _settings(tmp_path)
    arguments = ["train", "--dataset", "toy-halves", "--loss", "toy-half-squared"]
    for key in ("backbone", "width", "epochs", "batch_size", "validation_fraction", "out"):
        arguments += [f"--{key.replace('_', '-')}", str(settings[key])]
    assert main([*arguments, "--no-progress", "--no-tensorboard"]) == 0
    assert HalfSquaredLoss.calls == 3  # 45 training images, batches of 16
    config = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert config["rows"]["training"] == 45 and config["rows"]["unlabeled"] == 0
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "loss: toy-half-squared" in saved and "lr: 0.05" in saved


def test_an_unregistered_source_is_named_with_the_known_ones(toy_source) -> None:
    unregister_source("toy-halves")
    try:
        with pytest.raises(ValueError, match="unknown dataset 'toy-halves'; choose one of .*tags"):
            source_entry("toy-halves")
    finally:
        register_source(TOY_SOURCE)
    with pytest.raises(ValueError, match="'toy-halves' is registered already"):
        register_source(TOY_SOURCE)
    with pytest.raises(ValueError, match="keys must be among"):
        SourceEntry("toy-2", _read_toy, keys=("root",))
