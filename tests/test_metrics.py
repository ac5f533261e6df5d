"""Tests of rmlc.metrics against scikit-learn, hand-computed values and a 2-process run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from rmlc.metrics import (
    MultiLabelMeter,
    accuracy,
    mean_average_precision,
    topk_metrics,
    topk_predictions,
)
from tests.processes import process_context

TOPK_KEYS = {"P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O"}


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random scores (often integer-valued, hence tied) and {0, 1} targets, some empty classes."""
    rng = np.random.default_rng(seed)
    num_samples = int(rng.integers(1, 40))
    num_classes = int(rng.integers(1, 12))
    density = rng.uniform(0.05, 0.7)
    targets = (rng.random((num_samples, num_classes)) < density).astype(np.int64)
    targets[:, rng.random(num_classes) < 0.2] = 0  # some classes without positives
    if seed % 2 == 0:
        scores = rng.integers(-3, 4, size=(num_samples, num_classes)).astype(np.float64)
    else:
        scores = rng.normal(size=(num_samples, num_classes))
    if not targets.any():
        targets[rng.integers(num_samples), rng.integers(num_classes)] = 1
    return scores, targets


def reference_predictions(scores: np.ndarray, k: int, threshold: float | None) -> np.ndarray:
    """Top-k by a stable argsort of -scores (lower index first among ties), then threshold."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    predicted = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(predicted, order, True, axis=1)
    if threshold is not None:
        predicted &= scores >= threshold
    return predicted


# ---------------------------------------------------------------------------------------
# Blocks: the metrics work in bounded memory and give the same numbers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_metrics_in_blocks_equal_metrics_in_one_block(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row blocks of 1-3 rows (top-k) and column blocks of 1-3 classes (AP) give exactly
    the one-block values: blocks only bound the working memory."""
    import rmlc.metrics.functional as metrics

    scores, targets = random_case(seed)
    scores32 = scores.astype(np.float32)
    whole = {
        "topk": topk_metrics(scores32, targets, k=2),
        "mAP": mean_average_precision(scores32, targets),
        "voc11": mean_average_precision(scores32, targets, "voc11"),
    }
    side = max(scores.shape)
    monkeypatch.setattr(metrics, "_BLOCK_BYTES", metrics._BYTES_PER_ENTRY * side * (1 + seed % 3))
    assert metrics._block_length(side) == 1 + seed % 3
    assert topk_metrics(scores32, targets, k=2) == whole["topk"]
    assert mean_average_precision(scores32, targets) == whole["mAP"]
    assert mean_average_precision(scores32, targets, "voc11") == whole["voc11"]


def test_metrics_do_not_copy_the_scores_to_float64_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """No float64 block larger than the block budget is made (the scores stay float32)."""
    import rmlc.metrics.functional as metrics

    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.normal(size=(300, 50)).astype(np.float32))
    targets = torch.from_numpy((rng.random((300, 50)) < 0.2).astype(np.float32))
    largest = 0
    original = metrics.average_precision_per_class

    def spy(block, positive, interpolation="none"):
        nonlocal largest
        largest = max(largest, block.numel())
        return original(block, positive, interpolation)

    monkeypatch.setattr(metrics, "_BLOCK_BYTES", metrics._BYTES_PER_ENTRY * 300 * 7)
    monkeypatch.setattr(metrics, "average_precision_per_class", spy)
    mean_average_precision(scores, targets)
    assert largest == 300 * 7


# ---------------------------------------------------------------------------------------
# topk_metrics
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(50))
def test_topk_metrics_match_sklearn(seed: int) -> None:
    # scikit-learn is imported inside its tests so that the spawned workers of the
    # distributed test, which import this module, start faster.
    from sklearn.metrics import precision_recall_fscore_support

    scores, targets = random_case(seed)
    rng = np.random.default_rng(1000 + seed)
    k = int(rng.integers(1, scores.shape[1] + 3))  # sometimes k > m
    threshold = [0.0, None, 0.5, -1.0][seed % 4]
    predicted = reference_predictions(scores, k, threshold)
    present = np.flatnonzero(targets.any(axis=0))
    # scikit-learn reads one column as a binary 1-D problem; an extra all-zero column
    # (no positive, never predicted) keeps it multi-label and changes no count.
    empty = np.zeros((scores.shape[0], 1), dtype=bool)
    sk_targets, sk_predicted = np.hstack([targets, empty]), np.hstack([predicted, empty])

    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        sk_targets, sk_predicted, labels=present, average="macro", zero_division=0
    )
    # Overall counts run over every class: predicting a class without positives is a
    # false positive (so no ``labels=`` restriction here).
    micro_p, micro_r, micro_f1, _ = precision_recall_fscore_support(
        sk_targets, sk_predicted, average="micro", zero_division=0
    )
    harmonic = 0.0 if macro_p + macro_r == 0 else 2 * macro_p * macro_r / (macro_p + macro_r)
    expected = {
        "P-C": macro_p * 100,
        "R-C": macro_r * 100,
        "F1-C": harmonic * 100,
        "P-O": micro_p * 100,
        "R-O": micro_r * 100,
        "F1-O": micro_f1 * 100,
    }
    got = topk_metrics(scores, targets, k=k, threshold=threshold)
    assert set(got) == TOPK_KEYS
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key

    got_mean = topk_metrics(
        torch.from_numpy(scores), torch.from_numpy(targets), k, threshold, "mean"
    )
    assert got_mean["F1-C"] == pytest.approx(macro_f1 * 100, abs=1e-9)
    for key in TOPK_KEYS - {"F1-C"}:
        assert got_mean[key] == pytest.approx(expected[key], abs=1e-9), key


# Hand-computed case. k = 2.
#   row 0 scores ( 0.9,  0.8, -0.1,  0.7 ), targets (1, 0, 0, 1): top 2 = c0, c1
#   row 1 scores (-0.2,  0.1,  0.6, -0.5 ), targets (0, 0, 1, 0): top 2 = c2, c1
#   row 2 scores (-0.3, -0.4,  0.5, -0.05), targets (0, 1, 0, 0): top 2 = c2, c3 (c3 < 0)
HAND_SCORES = [
    [0.9, 0.8, -0.1, 0.7],
    [-0.2, 0.1, 0.6, -0.5],
    [-0.3, -0.4, 0.5, -0.05],
]
HAND_TARGETS = [[1, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]


def test_topk_metrics_hand_computed_threshold_zero() -> None:
    # threshold 0: row 2 predicts only c2.
    #   c0: Nc=1 Np=1 Ng=1 -> P=1,   R=1
    #   c1: Nc=0 Np=2 Ng=1 -> P=0,   R=0
    #   c2: Nc=1 Np=2 Ng=1 -> P=1/2, R=1
    #   c3: Nc=0 Np=0 Ng=1 -> P=0,   R=0
    # CP = (1 + 0 + 1/2 + 0) / 4 = 3/8, CR = (1 + 0 + 1 + 0) / 4 = 1/2
    # F1-C harmonic = 2 (3/8)(1/2) / (3/8 + 1/2) = (3/8) / (7/8) = 3/7
    # F1-C mean = (1 + 0 + 2(1/2)(1)/(3/2) + 0) / 4 = (1 + 2/3) / 4 = 5/12
    # OP = 2/5, OR = 2/4, OF1 = 2 (2/5)(1/2) / (2/5 + 1/2) = (2/5) / (9/10) = 4/9
    got = topk_metrics(torch.tensor(HAND_SCORES), torch.tensor(HAND_TARGETS), k=2)
    expected = {"P-C": 3 / 8, "R-C": 1 / 2, "F1-C": 3 / 7, "P-O": 2 / 5, "R-O": 1 / 2}
    expected["F1-O"] = 4 / 9
    assert got == pytest.approx({key: value * 100 for key, value in expected.items()})
    got_mean = topk_metrics(torch.tensor(HAND_SCORES), torch.tensor(HAND_TARGETS), 2, 0.0, "mean")
    assert got_mean["F1-C"] == pytest.approx(5 / 12 * 100)


def test_topk_metrics_hand_computed_threshold_none() -> None:
    # threshold None: row 2 also predicts c3 (target 0): c3 gets Np=1, Nc=0 -> P still 0.
    # CP = 3/8, CR = 1/2, F1-C = 3/7 as before; OP = 2/6, OR = 2/4,
    # OF1 = 2 (1/3)(1/2) / (1/3 + 1/2) = (1/3) / (5/6) = 2/5
    got = topk_metrics(
        np.array(HAND_SCORES), np.array(HAND_TARGETS) * 2 - 1, k=2, threshold=None
    )  # {-1, +1} targets
    expected = {"P-C": 3 / 8, "R-C": 1 / 2, "F1-C": 3 / 7, "P-O": 1 / 3, "R-O": 1 / 2}
    expected["F1-O"] = 2 / 5
    assert got == pytest.approx({key: value * 100 for key, value in expected.items()})
    with_threshold = topk_metrics(np.array(HAND_SCORES), np.array(HAND_TARGETS), k=2)
    assert with_threshold["P-O"] > got["P-O"]


def test_topk_ties_broken_by_lower_class_index() -> None:
    # Scores (1, 1, 1, 0): the top 2 are c0 and c1, never c2.
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert topk_predictions(scores, 2, None).tolist() == [[True, True, False, False]]
    # Targets c1, c2: c1 predicted (P=1, R=1), c2 not (P=0, R=0): CP = CR = 1/2.
    # OP = 1 correct / 2 predicted, OR = 1 / 2.
    got = topk_metrics(scores, torch.tensor([[0, 1, 1, 0]]), k=2, threshold=None)
    assert got["P-C"] == pytest.approx(50.0)
    assert got["R-C"] == pytest.approx(50.0)
    assert got["P-O"] == pytest.approx(50.0)
    # Scores (0, 1, 1, 1): the tied columns are 1, 2, 3, so the top 2 are c1 and c2 --
    # exactly the targets: CP = CR = OP = 1.
    flipped = topk_metrics(scores.flip(1), torch.tensor([[0, 1, 1, 0]]), k=2, threshold=None)
    assert flipped["P-C"] == pytest.approx(100.0)
    assert flipped["R-C"] == pytest.approx(100.0)
    assert flipped["P-O"] == pytest.approx(100.0)
    # Tied scores across many rows: every row predicts exactly the lowest k columns.
    tied = torch.zeros(5, 6)
    predicted = topk_predictions(tied, 3, 0.0)
    assert predicted[:, :3].all()
    assert not predicted[:, 3:].any()


def test_topk_k_larger_than_classes_is_clipped() -> None:
    scores = torch.tensor([[0.5, -0.5, 0.2], [0.1, 0.3, -0.2]])
    targets = torch.tensor([[1, 0, 1], [0, 1, 0]])
    assert topk_metrics(scores, targets, k=10, threshold=None) == topk_metrics(
        scores, targets, k=3, threshold=None
    )
    # k = m, no threshold: every label predicted, so recall 100 and OP = 3/6.
    got = topk_metrics(scores, targets, k=10, threshold=None)
    assert got["R-C"] == pytest.approx(100.0)
    assert got["P-O"] == pytest.approx(50.0)


def test_topk_class_without_positives_left_out_of_per_class_means() -> None:
    # c1 has no positive and is predicted for both rows; c0 is predicted and right.
    # Per-class means over c0 only: CP = 1, CR = 1. Overall: 2 correct / 4 predicted.
    scores = torch.tensor([[0.9, 0.8], [0.7, 0.6]])
    targets = torch.tensor([[1, 0], [1, 0]])
    got = topk_metrics(scores, targets, k=2)
    assert got["P-C"] == pytest.approx(100.0)
    assert got["R-C"] == pytest.approx(100.0)
    assert got["F1-C"] == pytest.approx(100.0)
    assert got["P-O"] == pytest.approx(50.0)
    assert got["R-O"] == pytest.approx(100.0)
    assert got["F1-O"] == pytest.approx(200 / 3)


def test_topk_nothing_predicted_gives_zeros() -> None:
    scores = -torch.ones(3, 4)
    targets = torch.eye(3, 4)
    got = topk_metrics(scores, targets, k=2, threshold=0.0)
    assert got == dict.fromkeys(TOPK_KEYS, 0.0)


def test_topk_accepts_low_precision_and_grad_tensors() -> None:
    targets = torch.tensor(HAND_TARGETS)
    reference = topk_metrics(torch.tensor(HAND_SCORES, dtype=torch.float64), targets, k=2)
    scores = torch.tensor(HAND_SCORES, requires_grad=True)
    assert topk_metrics(scores, targets, k=2) == reference
    assert topk_metrics(scores.detach().half(), targets.bool(), k=2) == reference


# ---------------------------------------------------------------------------------------
# mean_average_precision
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(50))
def test_map_matches_sklearn_with_ties(seed: int) -> None:
    from sklearn.metrics import average_precision_score

    scores, targets = random_case(seed)
    present = targets.any(axis=0)
    expected = (
        average_precision_score(targets[:, present], scores[:, present], average="macro") * 100
    )
    assert mean_average_precision(scores, targets) == pytest.approx(expected, abs=1e-9)
    assert mean_average_precision(
        torch.from_numpy(scores).float(), torch.from_numpy(targets) * 2 - 1
    ) == pytest.approx(expected, abs=1e-4)


def test_map_hand_computed_with_ties() -> None:
    # Scores (2, 1, 1, 0), targets (1, 1, 0, 1): curve points at the distinct scores
    #   >= 2: 1 of 1 correct, P = 1,   R = 1/3
    #   >= 1: 2 of 3 correct, P = 2/3, R = 2/3  (the tied pair enters together)
    #   >= 0: 3 of 4 correct, P = 3/4, R = 1
    # AP = 1/3 (1 + 2/3 + 3/4) = 29/36
    scores = torch.tensor([[2.0], [1.0], [1.0], [0.0]])
    targets = torch.tensor([[1], [1], [0], [1]])
    assert mean_average_precision(scores, targets) == pytest.approx(29 / 36 * 100)


# One class, scores decreasing, targets (1, 0, 0, 1, 1), Ng = 3:
#   rank  1    2    3    4    5
#   P     1    1/2  1/3  1/2  3/5
#   R     1/3  1/3  1/3  2/3  1
VOC_SCORES = torch.tensor([[0.9], [0.8], [0.7], [0.6], [0.5]])
VOC_TARGETS = torch.tensor([[1], [0], [0], [1], [1]])


def test_map_voc_variants_hand_computed() -> None:
    # none:  1/3 (1 + 1/2 + 3/5) = 0.7
    # voc:   envelope at rank 4 is max(1/2, 3/5) = 3/5: 1/3 (1 + 3/5 + 3/5) = 11/15
    # voc11: t = 0, .1, .2, .3 -> max P over R >= t = 1 (4 levels);
    #        t = .4 ... 1.0 -> max(1/2, 3/5) = 3/5 (7 levels): (4 + 7 * 3/5) / 11 = 41/55
    assert mean_average_precision(VOC_SCORES, VOC_TARGETS, "none") == pytest.approx(70.0)
    assert mean_average_precision(VOC_SCORES, VOC_TARGETS, "voc") == pytest.approx(1100 / 15)
    assert mean_average_precision(VOC_SCORES, VOC_TARGETS, "voc11") == pytest.approx(4100 / 55)


def test_map_voc11_recall_levels_are_exact() -> None:
    # Ng = 10; the first 3 rows are the only positives ranked before 7 negatives, then
    # the other 7 positives come last. R = 3/10 exactly at rank 3 with P = 1, so the
    # level t = 0.3 takes P = 1 (a float 3 * 0.1 = 0.30000000000000004 would miss it).
    # Levels 0 .. 0.3: P = 1 (4 levels); 0.4 .. 1.0: best P at R >= t is 10/17 (7 levels).
    targets = torch.tensor([1] * 3 + [0] * 7 + [1] * 7).unsqueeze(1)
    scores = -torch.arange(17, dtype=torch.float64).unsqueeze(1)
    expected = (4 * 1 + 7 * 10 / 17) / 11 * 100
    assert mean_average_precision(scores, targets, "voc11") == pytest.approx(expected)


def voc_reference_ap(scores: np.ndarray, positive: np.ndarray, use_07_metric: bool) -> float:
    """The VOC devkit's AP of one class (untied scores), written with plain loops."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(float)
    true_positives = np.cumsum(hits)
    recall = true_positives / hits.sum()
    precision = true_positives / np.arange(1, len(hits) + 1)
    if use_07_metric:
        total = 0.0
        for level in range(11):
            reached = recall >= level / 10
            total += precision[reached].max() if reached.any() else 0.0
        return total / 11
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


@pytest.mark.parametrize("seed", range(20))
def test_map_voc_variants_match_devkit_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_samples, num_classes = int(rng.integers(1, 60)), int(rng.integers(1, 6))
    scores = rng.normal(size=(num_samples, num_classes))  # untied
    targets = rng.random((num_samples, num_classes)) < rng.uniform(0.1, 0.6)
    targets[0, 0] = True
    present = np.flatnonzero(targets.any(axis=0))
    for interpolation, use_07 in (("voc", False), ("voc11", True)):
        expected = np.mean([voc_reference_ap(scores[:, c], targets[:, c], use_07) for c in present])
        got = mean_average_precision(scores, targets, interpolation)
        assert got == pytest.approx(expected * 100, abs=1e-9), interpolation


@pytest.mark.parametrize("interpolation", ["none", "voc", "voc11"])
@pytest.mark.parametrize("seed", range(10))
def test_map_invariant_to_increasing_transforms_and_row_order(
    interpolation: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(-8, 9, size=(30, 5)) / 4.0  # many ties, exact in float64
    targets = rng.random((30, 5)) < 0.4
    targets[0] = True
    base = mean_average_precision(scores, targets, interpolation)
    for transformed in (np.exp(scores), 3 * scores + 1, np.arctan(scores)):
        assert mean_average_precision(transformed, targets, interpolation) == pytest.approx(
            base, abs=1e-9
        )
    permutation = rng.permutation(30)
    assert mean_average_precision(
        scores[permutation], targets[permutation], interpolation
    ) == pytest.approx(base, abs=1e-9)
    # A strictly decreasing transform changes the ranking (and the value, here).
    assert mean_average_precision(-scores, targets, interpolation) != pytest.approx(base)


def test_map_hand_computed_rankings() -> None:
    targets = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]])
    perfect = targets.double()
    assert mean_average_precision(perfect, targets) == pytest.approx(100.0)
    # Class 0 scores (0.0, 0.1, 1.0, 0.9): order rows 2, 3, 1, 0; its positives (rows 1
    # and 0) sit at ranks 3 and 4: AP = (1/3 + 2/4) / 2. Class 1: its positive (row 2)
    # is ranked first: AP = 1. mAP = ((1/3 + 1/2) / 2 + 1) / 2.
    scores = torch.tensor([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.9, 0.1]])
    expected = ((1 / 3 + 2 / 4) / 2 + 1.0) / 2 * 100
    assert mean_average_precision(scores, targets) == pytest.approx(expected)


# ---------------------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------------------

ACC_SCORES = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.2, 0.3, 0.9], [1.0, 0.0, 0.0]])
# Argmax per row: 1, 0 (tie -> lower index), 2, 0.


def test_accuracy_with_index_labels() -> None:
    assert accuracy(ACC_SCORES, torch.tensor([1, 0, 2, 0])) == pytest.approx(100.0)
    assert accuracy(ACC_SCORES, torch.tensor([1, 1, 0, 0])) == pytest.approx(50.0)
    assert accuracy(ACC_SCORES.numpy(), np.array([2, 1, 0, 1])) == pytest.approx(0.0)


def test_accuracy_with_one_hot_and_signed_labels() -> None:
    labels = torch.tensor([1, 1, 2, 1])  # rows 0 and 2 right: 50 %
    one_hot = torch.nn.functional.one_hot(labels, 3)
    assert accuracy(ACC_SCORES, labels) == pytest.approx(50.0)
    assert accuracy(ACC_SCORES, one_hot) == pytest.approx(50.0)
    assert accuracy(ACC_SCORES, one_hot.float() * 2 - 1) == pytest.approx(50.0)
    assert accuracy(ACC_SCORES.numpy(), one_hot.bool().numpy()) == pytest.approx(50.0)


# ---------------------------------------------------------------------------------------
# MultiLabelMeter
# ---------------------------------------------------------------------------------------


def meter_data(seed: int = 0, n: int = 23, m: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(-4, 5, (n, m), generator=generator).float() / 2
    targets = (torch.rand(n, m, generator=generator) < 0.35).long()
    targets[0] = 1
    return scores, targets


def one_shot(scores: torch.Tensor, targets: torch.Tensor, **kwargs: object) -> dict[str, float]:
    expected = topk_metrics(scores, targets, **kwargs)  # type: ignore[arg-type]
    expected["mAP"] = mean_average_precision(scores, targets)
    return expected


def test_meter_batches_equal_one_shot() -> None:
    scores, targets = meter_data()
    meter, default = MultiLabelMeter(k=2, threshold=None, f1c="mean"), MultiLabelMeter()
    for start in range(0, 23, 5):
        meter.update(scores[start : start + 5], targets[start : start + 5] * 2 - 1)
        default.update(scores[start : start + 5], targets[start : start + 5])
    assert meter.num_samples == 23
    got = meter.compute()
    assert got == one_shot(scores, targets, k=2, threshold=None, f1c="mean")
    assert "accuracy" not in got  # multi-label rows
    assert default.compute() == one_shot(scores, targets)
    meter.reset()
    assert meter.num_samples == 0
    with pytest.raises(ValueError, match="empty"):
        meter.compute()


def test_meter_stores_detached_float32_copies() -> None:
    scores, targets = meter_data()
    source = scores.double().requires_grad_(True)
    meter = MultiLabelMeter()
    meter.update(source, targets)
    numpy_scores = scores.numpy().copy()
    meter.update(numpy_scores, targets.numpy())
    numpy_scores[:] = 100.0  # later changes of the caller's buffers do not leak in
    stored, stored_targets, indices = meter.gather()
    assert stored.dtype == torch.float32 and not stored.requires_grad
    assert stored_targets.dtype == torch.bool
    assert indices is None
    assert torch.equal(stored, torch.cat([scores, scores]))
    assert torch.equal(stored_targets, torch.cat([targets, targets]).bool())


def test_meter_reports_accuracy_for_single_label_rows() -> None:
    labels = torch.tensor([1, 0, 2, 0])
    meter = MultiLabelMeter(k=1)
    meter.update(ACC_SCORES, torch.nn.functional.one_hot(labels, 3))
    got = meter.compute()
    assert got["accuracy"] == pytest.approx(100.0)
    assert got["mAP"] == pytest.approx(100.0)


def test_meter_drops_duplicate_indices_and_sorts() -> None:
    scores, targets = meter_data()
    meter = MultiLabelMeter()
    order = torch.randperm(23, generator=torch.Generator().manual_seed(3))
    padded = torch.cat([order, order[:4]])  # 4 duplicates, as DistributedSampler pads
    for start in range(0, len(padded), 6):
        chunk = padded[start : start + 6]
        meter.update(scores[chunk], targets[chunk], indices=chunk.numpy())
    assert meter.num_samples == 27
    gathered_scores, gathered_targets, indices = meter.gather()
    assert torch.equal(indices, torch.arange(23))
    assert torch.equal(gathered_scores, scores)
    assert torch.equal(gathered_targets, targets.bool())
    assert meter.compute() == one_shot(scores, targets)


def test_meter_rejects_inconsistent_updates() -> None:
    scores, targets = meter_data()
    meter = MultiLabelMeter()
    meter.update(scores[:3], targets[:3], indices=torch.arange(3))
    with pytest.raises(ValueError, match="every batch or for none"):
        meter.update(scores[3:6], targets[3:6])
    with pytest.raises(ValueError, match="classes"):
        meter.update(scores[3:6, :4], targets[3:6, :4], indices=torch.arange(3, 6))
    with pytest.raises(TypeError, match="indices must be integers"):
        meter.update(scores[3:6], targets[3:6], indices=torch.tensor([3.0, 4.0, 5.0]))
    with pytest.raises(ValueError, match="indices must have shape"):
        meter.update(scores[3:6], targets[3:6], indices=torch.arange(2))
    changed = 1 - targets[:1]
    meter.update(scores[:1], changed, indices=torch.tensor([0]))
    with pytest.raises(ValueError, match="same index have different targets"):
        meter.compute()
    with pytest.raises(ValueError, match="targets must hold values"):
        MultiLabelMeter().update(scores, targets * 3)
    with pytest.raises(ValueError, match="finite"):
        MultiLabelMeter().update(torch.full((2, 3), 1e300, dtype=torch.float64), torch.ones(2, 3))


def _distributed_worker(
    rank: int, store: str, scores: torch.Tensor, targets: torch.Tensor, out_dir: str
) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        total = scores.shape[0]
        padded = list(range(total)) + list(range((-total) % 2))  # DistributedSampler padding
        mine = torch.tensor(padded[rank::2])
        with_indices, without_indices = MultiLabelMeter(), MultiLabelMeter()
        mean = MultiLabelMeter(k=2, threshold=None, f1c="mean")
        for start in range(0, len(mine), 4):
            chunk = mine[start : start + 4]
            with_indices.update(scores[chunk], targets[chunk], indices=chunk)
            mean.update(scores[chunk], targets[chunk], indices=chunk)
            without_indices.update(scores[chunk], targets[chunk])
        result = {
            "default": with_indices.compute(),
            "mean": mean.compute(),
            "gathered": with_indices.gather(),
            "no_indices": without_indices.gather(),
            "num_samples": with_indices.num_samples,
        }
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two gloo processes
def test_meter_two_process_gloo_equals_single_process(tmp_path: Path) -> None:
    scores, targets = meter_data(seed=5, n=23)
    context = process_context()
    args = (str(tmp_path / "store"), scores, targets, str(tmp_path))
    processes = [context.Process(target=_distributed_worker, args=(r, *args)) for r in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=90)
    for process in processes:
        if process.is_alive():
            process.terminate()
    assert [process.exitcode for process in processes] == [0, 0]

    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["num_samples"] == 12  # 23 rows padded to 24, split in two
        assert result["default"] == one_shot(scores, targets)
        assert result["mean"] == one_shot(scores, targets, k=2, threshold=None, f1c="mean")
        gathered_scores, gathered_targets, indices = result["gathered"]
        assert torch.equal(indices, torch.arange(23))
        assert torch.equal(gathered_scores, scores)
        assert torch.equal(gathered_targets, targets.bool())
        # Without indices the rows are concatenated in rank order, padding included.
        order = torch.tensor(list(range(0, 24, 2)) + list(range(1, 23, 2)) + [0])
        no_index_scores, no_index_targets, no_indices = result["no_indices"]
        assert no_indices is None
        assert torch.equal(no_index_scores, scores[order])
        assert torch.equal(no_index_targets, targets[order].bool())


# ---------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------

GOOD_SCORES = torch.tensor([[0.5, -0.5], [0.1, 0.2]])
GOOD_TARGETS = torch.tensor([[1, 0], [0, 1]])


def with_value(value: float) -> torch.Tensor:
    scores = GOOD_SCORES.clone()
    scores[1, 0] = value
    return scores


BAD_INPUTS = [
    # (scores, targets, exception, message)
    ([[0.5, -0.5], [0.1, 0.2]], GOOD_TARGETS, TypeError, "torch.Tensor or a numpy.ndarray"),
    (GOOD_SCORES[0], GOOD_TARGETS[0], ValueError, "scores must be 2-D"),
    (torch.tensor([[1, 0], [0, 1]]), GOOD_TARGETS, TypeError, "floating dtype"),
    (np.array([["a", "b"]]), GOOD_TARGETS, TypeError, "scores must be numeric"),
    (with_value(math.nan), GOOD_TARGETS, ValueError, "finite; found 1 NaN and 0 infinite"),
    (with_value(math.inf), GOOD_TARGETS, ValueError, "finite; found 0 NaN and 1 infinite"),
    (torch.zeros(0, 2), torch.zeros(0, 2), ValueError, r"empty: no samples \(N = 0\)"),
    (torch.zeros(2, 0), torch.zeros(2, 0), ValueError, "no classes"),
    (GOOD_SCORES, GOOD_TARGETS[:, :1], ValueError, "targets must have the shape of scores"),
    (GOOD_SCORES, GOOD_TARGETS * 2, ValueError, r"targets must hold values .* found values"),
    (GOOD_SCORES, GOOD_TARGETS.numpy() - 0.5, ValueError, "targets must hold values"),
    (GOOD_SCORES, torch.tensor([[1, 0], [0, -1]]), ValueError, "targets must hold values"),
    (GOOD_SCORES, torch.zeros(2, 2), ValueError, "at least one class with a positive"),
    (GOOD_SCORES, -torch.ones(2, 2), ValueError, "at least one class with a positive"),
]


@pytest.mark.parametrize(("scores", "targets", "error", "message"), BAD_INPUTS)
def test_bad_inputs_raise(scores: object, targets: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        topk_metrics(scores, targets)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        mean_average_precision(scores, targets)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, ValueError, "k must be an integer >= 1; got 0"),
        ({"k": 2.0}, TypeError, "k must be an integer >= 1; got 2.0"),
        ({"k": True}, TypeError, "k must be an integer"),
        ({"threshold": "0.5"}, TypeError, "threshold must be a float, one float per class or None"),
        ({"threshold": math.nan}, ValueError, "threshold must not be NaN"),
        ({"f1c": "macro"}, ValueError, "f1c must be one of 'harmonic', 'mean'"),
    ],
)
def test_bad_topk_arguments_raise(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        topk_metrics(GOOD_SCORES, GOOD_TARGETS, **kwargs)
    with pytest.raises(error, match=message):
        MultiLabelMeter(**kwargs)  # settings checked when the meter is made


def test_bad_interpolation_raises() -> None:
    with pytest.raises(ValueError, match="interpolation must be one of 'none', 'voc', 'voc11'"):
        mean_average_precision(GOOD_SCORES, GOOD_TARGETS, "11point")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (torch.tensor([1, 3, 0, 0]), ValueError, r"class indices in \[0, 3\)"),
        (torch.tensor([1, -1, 0, 0]), ValueError, r"class indices in \[0, 3\)"),
        (torch.tensor([1, 0, 2]), ValueError, "labels must have N = 4 entries"),
        (torch.tensor([1.0, 0.0, 2.0, 0.0]), TypeError, "must be integers"),
        (torch.eye(3)[[1, 0, 2, 0]][:, :2], ValueError, "labels must have the shape"),
        (torch.tensor([[0, 1, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0]]), ValueError, "row 1 has 0"),
        (torch.tensor([[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 0, 0]]), ValueError, "row 0 has 2"),
        (torch.tensor([[0, 1, 2], [1, 0, 0], [0, 0, 1], [1, 0, 0]]), ValueError, "hold values"),
        (torch.zeros(4, 3, 1, dtype=torch.long), ValueError, "labels must be"),
        ([1, 0, 2, 0], TypeError, "labels must be a torch.Tensor or a numpy.ndarray"),
    ],
)
def test_bad_accuracy_labels_raise(labels: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        accuracy(ACC_SCORES, labels)  # type: ignore[arg-type]


def test_bad_accuracy_scores_raise() -> None:
    with pytest.raises(ValueError, match="NaN"):
        accuracy(torch.tensor([[math.nan, 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def _ml_gcn_overall_topk(scores: np.ndarray, targets: np.ndarray, k: int):
    """A literal transcription of ML-GCN's ``util.py`` (``AveragePrecisionMeter.overall_topk``
    and ``evaluation``), written from its description: the top-k scores keep their sign,
    everything else is -1; a label counts as predicted where the kept score is >= 0."""
    n, n_class = scores.shape
    kept = np.zeros((n, n_class)) - 1
    index = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    for i in range(n):
        for ind in index[i]:
            kept[i, ind] = 1 if scores[i, ind] >= 0 else -1
    Nc, Np, Ng = np.zeros(n_class), np.zeros(n_class), np.zeros(n_class)
    for c in range(n_class):
        column, target = kept[:, c], targets[:, c].copy()
        target[target == -1] = 0
        Ng[c] = np.sum(target == 1)
        Np[c] = np.sum(column >= 0)
        Nc[c] = np.sum(target * (column >= 0))
    Np[Np == 0] = 1
    OP = np.sum(Nc) / np.sum(Np)
    OR = np.sum(Nc) / np.sum(Ng)
    OF1 = (2 * OP * OR) / (OP + OR)
    CP = np.sum(Nc / Np) / n_class
    CR = np.sum(Nc / Ng) / n_class
    CF1 = (2 * CP * CR) / (CP + CR)
    return {"P-C": CP, "R-C": CR, "F1-C": CF1, "P-O": OP, "R-O": OR, "F1-O": OF1}


@pytest.mark.parametrize("seed", range(50))
def test_the_ml_gcn_convention_matches_its_code(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(20, 60)), int(rng.integers(3, 12))
    targets = (rng.random((n, m)) < 0.3).astype(np.int64)
    targets[rng.integers(n, size=m), np.arange(m)] = 1  # every class has a positive
    scores = rng.normal(size=(n, m)) - 0.5
    scores[:, rng.integers(m)] -= 10.0  # a class never predicted (P-O's phantom)
    expected = _ml_gcn_overall_topk(scores, targets, 3)
    got = topk_metrics(scores, targets, k=3, convention="ml-gcn")
    for key, value in expected.items():
        assert got[key] == pytest.approx(100 * value, abs=1e-9), key
    ours = topk_metrics(scores, targets, k=3)
    assert ours["P-O"] > got["P-O"]  # the definition has no phantom prediction
    for key in ("P-C", "R-C", "F1-C", "R-O"):
        assert ours[key] == pytest.approx(got[key], abs=1e-9)


def test_the_ml_gcn_convention_needs_a_positive_in_every_class() -> None:
    targets = np.array([[1, 0, 0], [1, 1, 0]])
    with pytest.raises(ValueError, match=r"classes \[2\] have none"):
        topk_metrics(np.zeros((2, 3)), targets, convention="ml-gcn")
    with pytest.raises(ValueError, match="convention must be one of"):
        topk_metrics(np.zeros((2, 3)), targets, convention="coco")
