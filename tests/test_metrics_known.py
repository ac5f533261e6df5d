"""Metrics over known entries (partial labels, issue 27 item 3) against scikit-learn on
the known subset: per class for mAP and the per-class top-k values, over every known entry
for the overall ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rmlc.metrics import (
    MultiLabelMeter,
    average_precision_per_class,
    mean_average_precision,
    topk_metrics,
)
from tests.test_metrics import random_case, reference_predictions


def masked_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`random_case` with a random mask of known entries (a class never known, a
    class whose positives are all unknown), at least one known positive."""
    scores, targets = random_case(seed)
    rng = np.random.default_rng(500 + seed)
    known = rng.random(scores.shape) < rng.uniform(0.3, 0.95)
    if scores.shape[1] > 2:
        known[:, 0] = False
        known[:, 1] &= targets[:, 1] == 0
    if not (targets.astype(bool) & known).any():
        i, j = np.argwhere(targets)[0]
        known[i, j] = True
    return scores, targets, known


@pytest.mark.parametrize("seed", range(40))
def test_masked_map_is_sklearn_on_each_class_known_images(seed: int) -> None:
    from sklearn.metrics import average_precision_score

    scores, targets, known = masked_case(seed)
    per_class = [
        average_precision_score(targets[known[:, c], c], scores[known[:, c], c])
        for c in range(scores.shape[1])
        if (targets[:, c].astype(bool) & known[:, c]).any()
    ]
    got = mean_average_precision(scores, targets, known=known)
    assert got == pytest.approx(np.mean(per_class) * 100, abs=1e-9)
    for interpolation in ("voc", "voc11"):  # the unmasked AP of each class's known subset
        expected = [
            float(
                average_precision_per_class(
                    torch.from_numpy(scores[known[:, c], c : c + 1]),
                    torch.from_numpy(targets[known[:, c], c : c + 1].astype(bool)),
                    interpolation,
                )[0]
            )
            for c in range(scores.shape[1])
            if (targets[:, c].astype(bool) & known[:, c]).any()
        ]
        got = mean_average_precision(scores, targets, interpolation, known=known)
        assert got == pytest.approx(np.mean(expected) * 100, abs=1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_masked_topk_is_sklearn_on_the_known_entries(seed: int) -> None:
    from sklearn.metrics import precision_recall_fscore_support, precision_score, recall_score

    scores, targets, known = masked_case(seed)
    k, threshold = 1 + seed % 4, [0.0, None][seed % 2]
    predicted = reference_predictions(scores, k, threshold)  # chosen among all labels
    present = [
        c for c in range(scores.shape[1]) if (targets[:, c].astype(bool) & known[:, c]).any()
    ]
    precision = [
        precision_score(targets[known[:, c], c], predicted[known[:, c], c], zero_division=0)
        for c in present
    ]
    recall = [recall_score(targets[known[:, c], c], predicted[known[:, c], c]) for c in present]
    micro_p, micro_r, micro_f1, _ = precision_recall_fscore_support(
        targets[known], predicted[known], average="binary", zero_division=0
    )
    got = topk_metrics(scores, targets, k=k, threshold=threshold, f1c="mean", known=known)
    f1 = [
        0.0 if p + r == 0 else 2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)
    ]
    expected = {
        "P-C": np.mean(precision),
        "R-C": np.mean(recall),
        "F1-C": np.mean(f1),
        "P-O": micro_p,
        "R-O": micro_r,
        "F1-O": micro_f1,
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value * 100, abs=1e-9), key


@pytest.mark.parametrize("seed", range(10))
def test_the_all_known_mask_changes_nothing(seed: int) -> None:
    scores, targets = random_case(seed)
    known = np.ones(scores.shape, dtype=bool)
    assert topk_metrics(scores, targets, known=known) == topk_metrics(scores, targets)
    for interpolation in ("none", "voc", "voc11"):
        masked = mean_average_precision(scores, targets, interpolation, known=known)
        assert masked == mean_average_precision(scores, targets, interpolation)


def test_unknown_entries_do_not_matter() -> None:
    scores, targets, known = masked_case(3)
    rng = np.random.default_rng(0)
    other_scores = np.where(known, scores, rng.normal(size=scores.shape) * 5)
    other_targets = np.where(known, targets, 1 - targets)
    assert mean_average_precision(other_scores, other_targets, known=known) == (
        mean_average_precision(scores, targets, known=known)
    )
    # top-k is chosen among all labels, so only the targets of unknown entries may change
    assert topk_metrics(scores, other_targets, known=known) == topk_metrics(
        scores, targets, known=known
    )


def test_the_meter_passes_the_masks_of_its_batches() -> None:
    scores, targets, known = masked_case(5)
    meter = MultiLabelMeter(k=2)
    half = scores.shape[0] // 2
    meter.update(scores[:half], targets[:half])  # no mask: all known
    meter.update(scores[half:], targets[half:], known=torch.from_numpy(known[half:]))
    full = known.copy()
    full[:half] = True
    result = meter.compute()
    assert result["mAP"] == mean_average_precision(scores.astype(np.float32), targets, known=full)
    topk = topk_metrics(scores.astype(np.float32), targets, k=2, known=full)
    assert {key: result[key] for key in topk} == topk
    assert "accuracy" not in result or full.all()


def test_the_meter_keeps_accuracy_when_every_entry_is_known() -> None:
    labels = np.eye(4, dtype=np.int64)[[0, 1, 2, 3, 1]]
    scores = np.random.default_rng(0).normal(size=labels.shape)
    meter = MultiLabelMeter()
    meter.update(scores, labels, known=np.ones(labels.shape, dtype=bool))
    assert "accuracy" in meter.compute()
    meter.reset()
    known = np.ones(labels.shape, dtype=bool)
    known[0, 3] = False
    meter.update(scores, labels, known=known)
    assert "accuracy" not in meter.compute()


@pytest.mark.parametrize(
    ("known", "error", "message"),
    [
        (np.ones((5, 4)), TypeError, "known must be a bool mask"),
        (np.ones((5, 3), dtype=bool), ValueError, r"known must have the shape of scores \(5, 4\)"),
        ([[True] * 4] * 5, TypeError, "known must be a torch.Tensor or a numpy.ndarray"),
    ],
)
def test_a_bad_mask_is_refused_with_its_name(known, error, message) -> None:
    scores, targets = np.zeros((5, 4)), np.eye(5, 4)
    with pytest.raises(error, match=message):
        mean_average_precision(scores, targets, known=known)
    with pytest.raises(error, match=message):
        topk_metrics(scores, targets, known=known)
    with pytest.raises(error, match=message):
        MultiLabelMeter().update(scores, targets, known=known)
