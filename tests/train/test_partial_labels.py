"""Partial labels through training: the protocol hides tags, the losses see the known mask,
the metrics score known entries only, and ``rmlc evaluate`` equals scikit-learn on them."""

from __future__ import annotations

import json
import warnings
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score

from rmlc.data import hide_tags, keep_single_positive
from rmlc.losses import LossEntry, MultiLabelLoss, register_loss, unregister_loss
from rmlc.train import TrainConfig, run
from rmlc.train.evaluation import split_metrics
from rmlc.train.protocol import apply_protocol, decision_seed
from rmlc.train.sources import SourceEntry, SourceRows, register_source, unregister_source
from rmlc.train.targets import SparseTargets
from tests.test_registries import _settings
from tests.test_registries import _toy_images as _images

CLASSES = ["top", "bottom", "left", "right"]


def _test_negatives(targets: np.ndarray) -> np.ndarray:
    """Half the test split's negatives verified absent, the others unknown."""
    rng = np.random.default_rng(5)
    return ((targets == 0) & (rng.random(targets.shape) < 0.5)).astype(np.uint8)


def _read(config: TrainConfig) -> SourceRows:
    images, targets = _images(80, seed=0)
    test_images, test_targets = _images(40, seed=1)
    return SourceRows(
        images=images,
        targets=targets,
        classes=list(CLASSES),
        test=(test_images, test_targets),
        test_negatives=_test_negatives(test_targets),
    )


class SpyLoss(MultiLabelLoss):
    """Squared error of the sigmoid scores over the known entries; keeps every mask."""

    masks: ClassVar[list] = []

    def per_sample(self, logits, positive, known=None):
        SpyLoss.masks.append(None if known is None else known.clone())
        error = (torch.sigmoid(logits) - positive) ** 2
        return error.sum(dim=1) if known is None else (error * known).sum(dim=1)


@pytest.fixture
def toy():
    register_source(SourceEntry("toy-partial", _read, "tiny images with verified negatives"))
    register_loss(LossEntry("toy-spy", SpyLoss, 0.05, "squared error, spying on masks"))
    SpyLoss.masks = []
    yield
    unregister_source("toy-partial")
    unregister_loss("toy-spy")


def _config(tmp_path, **values) -> TrainConfig:
    return TrainConfig.from_dict(_settings(tmp_path, **{"dataset": "toy-partial", **values}))


def test_the_protocol_hides_known_tags_of_the_labeled_rows(toy, tmp_path) -> None:
    rows = _read(None)
    config = _config(tmp_path, hide_tags=0.5, seed=3)
    split = apply_protocol(rows, config)
    positives = rows.targets > 0
    expected, _ = hide_tags(positives, 0.5, decision_seed(3, "hide_tags"))
    known = (np.asarray(split.targets) > 0) | (split.negatives.toarray() > 0)
    np.testing.assert_array_equal(known, expected)
    # a hidden positive is unknown, never a negative; what is listed positive was positive
    assert not (split.negatives.toarray().astype(bool) & positives).any()
    assert not ((np.asarray(split.targets) > 0) & ~positives).any()
    assert split.clean is None  # hiding is not corruption
    assert (split.test_negatives == rows.test_negatives).all()
    forgotten = apply_protocol(rows, _config(tmp_path, hide_tags=0.5, unknown_tags="negative"))
    assert forgotten.negatives is None and forgotten.test_negatives is None
    single = apply_protocol(rows, _config(tmp_path, single_positive=True, seed=3))
    expected, _ = keep_single_positive(positives, decision_seed(3, "hide_tags"))
    np.testing.assert_array_equal(np.asarray(single.targets) > 0, expected)
    assert single.negatives.nnz == 0
    # corruption comes first, then hiding; corrupting verified negatives is refused
    noisy = apply_protocol(rows, _config(tmp_path, hide_tags=0.5, label_noise=0.3))
    assert noisy.clean is not None and noisy.negatives is not None
    bad = dict(rows.__dict__, negatives=(rows.targets == 0).astype(np.uint8))
    with pytest.raises(ValueError, match="verified negatives"):
        apply_protocol(SourceRows(**bad), _config(tmp_path, label_noise=0.3))


def test_the_loss_sees_the_known_mask_only_when_tags_are_unknown(toy, tmp_path) -> None:
    run(_config(tmp_path, loss="toy-spy", hide_tags=0.5))
    assert SpyLoss.masks and all(mask is not None for mask in SpyLoss.masks)
    seen = torch.cat(SpyLoss.masks)
    assert 0.3 < seen.float().mean() < 0.7  # about half of every tag is known
    SpyLoss.masks = []
    run(_config(tmp_path, loss="toy-spy", hide_tags=0.5, unknown_tags="negative", overwrite=True))
    assert SpyLoss.masks and all(mask is None for mask in SpyLoss.masks)


def test_training_without_a_verified_negative_is_said_out_loud(toy, tmp_path) -> None:
    """Single positive with unknown tags left out: the loss would see positives only."""
    from rmlc.train.datasets import build_training_data

    with pytest.warns(UserWarning, match="no tag is verified absent .* unknown_tags 'negative'"):
        build_training_data(_config(tmp_path, single_positive=True))

    def top_never_absent(config: TrainConfig) -> SourceRows:
        rows = _read(config)
        negatives = (rows.targets == 0).astype(np.uint8)
        negatives[:, 0] = 0  # "top": positive or unknown, never verified absent
        return SourceRows(**{**rows.__dict__, "negatives": negatives})

    register_source(SourceEntry("toy-top-unverified", top_never_absent, "no 'top' negative"))
    try:
        with pytest.warns(UserWarning, match="absent in the labeled training data: top;"):
            build_training_data(_config(tmp_path, dataset="toy-top-unverified"))
    finally:
        unregister_source("toy-top-unverified")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        build_training_data(_config(tmp_path, single_positive=True, unknown_tags="negative"))
        build_training_data(_config(tmp_path, hide_tags=0.5))


def test_split_metrics_score_the_known_entries_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(0)
    targets = (rng.random((50, 4)) < 0.4).astype(np.uint8)
    negatives = _test_negatives(targets)
    scores = torch.from_numpy(rng.normal(size=(50, 4)).astype(np.float32))
    metrics = split_metrics(
        scores, torch.arange(50), SparseTargets(targets, negatives), 2, 0.0, False
    )
    known = (targets + negatives) > 0
    per_class = [
        average_precision_score(targets[known[:, j], j], scores.numpy()[known[:, j], j])
        for j in range(4)
        if targets[known[:, j], j].any()
    ]
    assert metrics["mAP"] == pytest.approx(100 * np.mean(per_class), abs=1e-9)
    assert "accuracy" not in metrics


def test_rmlc_evaluate_on_a_table_with_negatives_scores_known_tags(toy, tmp_path) -> None:
    from rmlc.cli import main
    from rmlc.inference import file_store, load_trained_model, score_images

    run(_config(tmp_path, epochs=1))
    images, targets = _images(40, seed=1)
    negatives = _test_negatives(targets)
    lines = ["image,labels,negatives"]
    for row in range(40):
        name = f"{row}.png"
        Image.fromarray(images[row, 0]).save(tmp_path / name)
        tags = [
            "|".join(c for c, on in zip(CLASSES, flags, strict=True) if on)
            for flags in (targets[row], negatives[row])
        ]
        lines.append(f"{name},{tags[0]},{tags[1]}")
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    checkpoint = str(tmp_path / "run" / "best.pt")
    out = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                checkpoint,
                "--test",
                str(tmp_path / "test.csv"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    trained = load_trained_model(checkpoint, "cpu")
    store = file_store(trained, [tmp_path / f"{row}.png" for row in range(40)])
    scores = score_images(trained, trained.view(store), "cpu")
    known = (targets + negatives) > 0
    per_class = [
        average_precision_score(targets[known[:, j], j], scores[known[:, j], j])
        for j in range(4)
        if targets[known[:, j], j].any()
    ]
    assert json.loads(out.read_text())["mAP"] == pytest.approx(100 * np.mean(per_class), abs=1e-6)


@pytest.mark.parametrize("choice", ["auto", "per-class"])
def test_a_threshold_chosen_on_validation_reads_only_its_known_tags(toy, tmp_path, choice) -> None:
    """Hidden tags in validation: the chosen threshold reaches the best F1 of any cut over
    the known entries (a brute force over every cut), not over all entries."""
    from rmlc.train.launch import build_trainer
    from tests.train.test_thresholds import _brute_force_best_f1, _f1

    trainer = build_trainer(_config(tmp_path, hide_tags=0.5, threshold=choice))
    chosen = np.asarray(trainer.fit()["threshold"])
    view, targets = trainer.data.validation
    scores, indices = trainer.predict_scores(view)
    scores, positive = scores.numpy(), targets[indices].numpy() > 0
    known = targets.known(indices).numpy()
    assert not known.all()
    if choice == "auto":
        assert _f1(scores[known] >= chosen, positive[known]) == pytest.approx(
            _brute_force_best_f1(scores[known], positive[known])
        )
        return
    for j in np.flatnonzero((positive & known).any(axis=0)):
        rows = known[:, j]
        assert _f1(scores[rows, j] >= chosen[j], positive[rows, j]) == pytest.approx(
            _brute_force_best_f1(scores[rows, j], positive[rows, j])
        )
