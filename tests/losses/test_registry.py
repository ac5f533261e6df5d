"""The loss registry: one entry per loss, read by the config, the trainer, the estimator and
the command line; a toy loss registered here is trained by all of them."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
import torch

from rmlc.losses import (
    LOSS_REGISTRY,
    LOSSES,
    GeneralizedCrossEntropy,
    LargeLossRejection,
    LossEntry,
    MultiLabelLoss,
    RMLCLoss,
    build_loss,
    loss_entry,
    register_loss,
    unregister_loss,
)
from rmlc.losses.ranking import RAMP_START


class ToyLoss(MultiLabelLoss):
    """Squared error of the sigmoid scores, times ``kappa``; records the epochs it was told."""

    epochs_told: ClassVar[list[int]] = []

    def __init__(self, kappa: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.kappa = kappa

    def set_epoch(self, epoch: int) -> None:
        ToyLoss.epochs_told.append(epoch)

    def per_sample(self, logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        return self.kappa * ((torch.sigmoid(logits) - positive) ** 2).sum(dim=1)


TOY = LossEntry(
    "toy",
    ToyLoss,
    0.03,
    "squared error of the sigmoid scores",
    takes_epoch=True,
    estimator_settings=("kappa",),
)


@pytest.fixture
def toy():
    ToyLoss.epochs_told = []
    register_loss(TOY)
    yield TOY
    unregister_loss("toy")


def test_the_built_in_entries_keep_the_defaults_they_had() -> None:
    """The table the registry replaced: learning rates, warm starts, sampled ranks."""
    from rmlc.train.config import DEFAULT_LEARNING_RATES, DEFAULT_RAMP_START

    old_rates = {"rmlc": 0.006, "rmlc-paper": 0.002, "warp": 0.002}
    old_rates |= {"bce": 0.05, "softmax": 0.05, "asl": 0.05}
    assert {name: DEFAULT_LEARNING_RATES[name] for name in old_rates} == old_rates
    assert DEFAULT_LEARNING_RATES["gce"] == DEFAULT_LEARNING_RATES["llr"] == 0.05  # BCE's
    assert dict(DEFAULT_RAMP_START) == {"rmlc": RAMP_START}
    assert [n for n, e in LOSS_REGISTRY.items() if e.warm_start] == ["rmlc", "rmlc-paper"]
    assert [n for n, e in LOSS_REGISTRY.items() if e.sampled_ranks] == [
        "rmlc",
        "rmlc-paper",
        "warp",
    ]
    assert [n for n, e in LOSS_REGISTRY.items() if e.takes_epoch] == ["llr"]
    assert all(entry.on_features for entry in LOSS_REGISTRY.values())
    assert LOSSES["rmlc"] is RMLCLoss and LOSSES["rmlc-paper"] == RMLCLoss.paper
    assert isinstance(build_loss("GCE"), GeneralizedCrossEntropy)  # names ignore case
    assert isinstance(build_loss("llr"), LargeLossRejection)


def test_a_registered_loss_is_known_everywhere_and_an_unregistered_one_nowhere() -> None:
    from rmlc.cli import build_parser
    from rmlc.train import TrainConfig
    from rmlc.train.config import DEFAULT_LEARNING_RATES

    register_loss(TOY)
    try:
        assert "toy" in LOSSES and LOSS_REGISTRY["toy"] is TOY and loss_entry("TOY") is TOY
        assert isinstance(build_loss("toy", kappa=2.0), ToyLoss)
        assert DEFAULT_LEARNING_RATES["toy"] == 0.03
        config = TrainConfig(loss="toy")
        assert (config.lr, config.ramp_start) == (0.03, None)
        with pytest.raises(ValueError, match=r"hinge warm start \('rmlc', 'rmlc-paper'\)"):
            TrainConfig(loss="toy", ramp_start=0.5)
        arguments = build_parser().parse_args(["train", "--loss", "toy"])
        assert arguments.loss == "toy"
        with pytest.raises(ValueError, match="'toy' is registered already"):
            register_loss(TOY)
        assert register_loss(TOY, replace=True) is TOY
    finally:
        assert unregister_loss("toy") is TOY
    assert "toy" not in LOSSES and "toy" not in DEFAULT_LEARNING_RATES
    with pytest.raises(ValueError, match="unknown loss 'toy'; choose one of rmlc, rmlc-paper"):
        build_loss("toy")
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="toy")


def test_a_toy_loss_trains_a_network_for_an_epoch(toy, tmp_path) -> None:
    """Through ``rmlc.train.fit`` on tiny arrays: its learning rate, its epochs told."""
    from rmlc.train import fit

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 1, 12, 12), dtype=np.uint8)
    targets = (rng.random((40, 4)) < 0.3).astype(np.int64)
    settings = {"backbone": "small-cnn", "width": 4, "epochs": 2, "batch_size": 16}
    settings |= {"progress": False, "tensorboard": False, "validation_fraction": 0.25}
    model = fit(images, targets, loss="toy", out=str(tmp_path / "run"), **settings)
    assert model.config["loss"] == "toy" and model.config["lr"] == 0.03
    assert ToyLoss.epochs_told == [0, 1]
    assert model.scores(images[:5]).shape == (5, 4)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and "train_loss" in log[0]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2


def test_a_toy_loss_fits_the_linear_classifier(toy) -> None:
    """Its entry applies on features: the estimator passes it ``kappa`` (its only estimator
    setting) and tells it each epoch."""
    from rmlc.linear import RMLClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    Y = (X[:, :3] > 0.3).astype(np.int64)
    model = RMLClassifier(loss="toy", kappa=3.0, s=-0.5, max_epochs=3, tol=None, random_state=0)
    assert model._build_loss(torch.Generator(), 10).kappa == 3.0
    model.fit(X, Y)
    assert ToyLoss.epochs_told == [0, 1, 2] and model.n_iter_ == 3
    assert model.score(X, Y) > 0.8


def test_a_loss_off_features_is_refused_by_the_estimator() -> None:
    from rmlc.linear import RMLClassifier

    register_loss(LossEntry("end-to-end-only", ToyLoss, 0.01, on_features=False))
    try:
        X, Y = np.zeros((4, 2)), np.eye(4, 3)
        with pytest.raises(ValueError, match="'loss' parameter of RMLClassifier must be a str"):
            RMLClassifier(loss="end-to-end-only").fit(X, Y)
    finally:
        unregister_loss("end-to-end-only")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "My Loss"}, "name must be lower-case"),
        ({"name": ""}, "name must be lower-case"),
        ({"factory": "ToyLoss"}, "factory must be callable"),
        ({"default_lr": 0.0}, "default_lr must be a number > 0; got 0.0"),
        ({"default_lr": float("nan")}, "default_lr must be a number > 0"),
        ({"ramp_start": 0.5}, r"needs warm_start=True"),
        ({"ramp_start": 1.5, "warm_start": True}, r"ramp_start must lie in \[0, 1\]"),
        ({"estimator_settings": ("alpha",)}, "estimator_settings must be among"),
    ],
)
def test_bad_entries_are_refused(fields: dict, message: str) -> None:
    values = {"name": "bad", "factory": ToyLoss, "default_lr": 0.1} | fields
    with pytest.raises(ValueError, match=message):
        LossEntry(**values)


def test_only_entries_are_registered() -> None:
    with pytest.raises(TypeError, match="entry must be a LossEntry"):
        register_loss(ToyLoss)
    with pytest.raises(TypeError):
        LOSS_REGISTRY["toy"] = TOY  # a read-only view
