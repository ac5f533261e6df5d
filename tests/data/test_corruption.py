"""Label corruption and missing labels: nesting, frequencies, encodings, protocols."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rmlc.data import corrupt_labels, corrupted_subset, drop_positives


def multilabel(n: int = 2000, m: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, m)) < rng.uniform(0.05, 0.4, m)).astype(np.uint8)
    targets[~targets.any(axis=1), 0] = 1
    return targets


def test_subsets_are_nested_across_rates() -> None:
    targets = multilabel()
    subsets = []
    for rate in (0.0, 0.1, 0.2, 0.4, 1.0):
        _, report = corrupt_labels(targets, rate, seed=5, return_report=True)
        assert report.n_corrupted == round(rate * len(targets))
        np.testing.assert_array_equal(report.indices, corrupted_subset(len(targets), rate, 5))
        subsets.append(set(report.indices.tolist()))
    for small, large in itertools.pairwise(subsets):
        assert small <= large
    labels = np.arange(1000) % 7
    single = [
        set(corrupt_labels(labels, r, 5, "symmetric", return_report=True)[1].indices.tolist())
        for r in (0.1, 0.3)
    ]
    assert single[0] <= single[1]
    other_seed = corrupt_labels(targets, 0.1, seed=6, return_report=True)[1]
    assert set(other_seed.indices.tolist()) != subsets[1]


def test_paper_protocol_keeps_class_frequencies_exactly() -> None:
    targets = multilabel()
    noisy, report = corrupt_labels(targets, 0.3, seed=1, return_report=True)
    np.testing.assert_array_equal(noisy.sum(axis=0), targets.sum(axis=0))
    untouched = np.setdiff1d(np.arange(len(targets)), report.indices)
    np.testing.assert_array_equal(noisy[untouched], targets[untouched])
    flips = noisy != targets
    assert report.flipped_fraction == pytest.approx(flips.mean())
    assert report.n_changed == flips.any(axis=1).sum()
    assert report.n_changed > 0.8 * report.n_corrupted  # most rows really change
    # the rows are a permutation of the original corrupted rows
    rows = sorted(map(bytes, targets[report.indices]))
    assert rows == sorted(map(bytes, noisy[report.indices]))


def test_independent_protocol_keeps_frequencies_within_sampling_error() -> None:
    targets = multilabel(n=4000)
    noisy, report = corrupt_labels(targets, 0.5, seed=2, protocol="independent", return_report=True)
    new = noisy[report.indices].astype(float)
    frequency = targets.mean(axis=0)
    k = len(report.indices)
    # non-empty redraws raise frequencies a little: allow 4 sigma + the redraw bias
    empty = np.prod(1 - frequency)
    tolerance = 4 * np.sqrt(frequency * (1 - frequency) / k) + frequency * empty / (1 - empty)
    assert (np.abs(new.mean(axis=0) - frequency) <= tolerance).all()
    assert new.sum(axis=1).min() >= 1


def test_rate_zero_is_identity_and_bad_rates() -> None:
    targets = multilabel(n=50)
    noisy, report = corrupt_labels(targets, 0.0, return_report=True)
    np.testing.assert_array_equal(noisy, targets)
    assert noisy is not targets and report.n_corrupted == 0 and report.flipped_fraction == 0
    for rate in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="rate must lie in"):
            corrupt_labels(targets, rate)


@pytest.mark.parametrize("encoding", ["01-uint8", "pm1-float32", "bool", "01-int64"])
def test_encoding_and_dtype_are_kept(encoding: str) -> None:
    base = multilabel(n=200).astype(bool)
    targets = {
        "01-uint8": base.astype(np.uint8),
        "pm1-float32": np.where(base, 1, -1).astype(np.float32),
        "bool": base,
        "01-int64": base.astype(np.int64),
    }[encoding]
    for noisy in (corrupt_labels(targets, 0.5, 3), drop_positives(targets, 0.5, 3)):
        assert noisy.dtype == targets.dtype and noisy.shape == targets.shape
        assert set(np.unique(noisy).tolist()) <= set(np.unique(targets).tolist())
    with pytest.raises(ValueError, match="found values"):
        corrupt_labels(np.array([[0, 2]]), 0.5)


def test_corruption_is_deterministic() -> None:
    targets = multilabel(n=300)
    np.testing.assert_array_equal(corrupt_labels(targets, 0.4, 9), corrupt_labels(targets, 0.4, 9))
    assert not np.array_equal(corrupt_labels(targets, 0.4, 9), corrupt_labels(targets, 0.4, 10))


def test_single_label_protocols() -> None:
    labels = np.arange(3000) % 5
    noisy, report = corrupt_labels(labels, 0.4, 0, "symmetric", return_report=True)
    assert noisy.dtype == labels.dtype
    changed = np.flatnonzero(noisy != labels)
    np.testing.assert_array_equal(changed, report.indices)  # every corrupted label changes
    assert report.flipped_fraction == pytest.approx(0.4)
    # new labels are uniform among the 4 other classes
    offsets = (noisy[changed] - labels[changed]) % 5
    counts = np.bincount(offsets, minlength=5)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * counts[1:].mean()
    flipped = corrupt_labels(labels, 0.4, 0, "pairflip")
    np.testing.assert_array_equal(flipped[changed], (labels[changed] + 1) % 5)
    paper = corrupt_labels(labels, 0.4, 0, "paper")
    np.testing.assert_array_equal(np.bincount(paper), np.bincount(labels))
    only_to_zero = np.zeros((5, 5))
    only_to_zero[:, 0] = 1
    moved = corrupt_labels(labels, 0.4, 0, "transition", transition=only_to_zero)
    assert (moved[report.indices] == 0).all()
    with pytest.raises(ValueError, match="transition row 1 sums to"):
        corrupt_labels(labels, 0.4, 0, "transition", transition=np.eye(5) * [1, 2, 1, 1, 1])
    with pytest.raises(ValueError, match="transition= is required"):
        corrupt_labels(labels, 0.4, 0, "transition")
    with pytest.raises(ValueError, match=r"protocol for multi-label .* got 'symmetric'"):
        corrupt_labels(multilabel(n=10), 0.4, 0, "symmetric")
    with pytest.raises(ValueError, match=r"protocol for single-label .* got 'independent'"):
        corrupt_labels(labels, 0.4, 0, "independent")
    with pytest.raises(ValueError, match="out of range for num_classes=3"):
        corrupt_labels(labels, 0.4, 0, "symmetric", num_classes=3)


def test_drop_positives_rate_nesting_and_report() -> None:
    targets = multilabel(n=3000)
    positives = int(targets.sum())
    dropped, report = drop_positives(targets, 0.3, seed=4, return_report=True)
    assert not (dropped > targets).any()  # negatives never become positive
    removed = int((targets - dropped).sum())
    assert report.n_dropped == removed and report.n_positives == positives
    sigma = np.sqrt(0.3 * 0.7 / positives)
    assert abs(report.dropped_fraction - 0.3) < 4 * sigma
    np.testing.assert_array_equal(
        report.emptied_rows, np.flatnonzero(targets.any(axis=1) & ~dropped.any(axis=1))
    )
    more = drop_positives(targets, 0.6, seed=4)
    assert not (more > dropped).any()  # what is dropped at 0.3 is dropped at 0.6
    np.testing.assert_array_equal(drop_positives(targets, 0.0), targets)
    assert not drop_positives(targets, 1.0).any()
    with pytest.raises(ValueError, match="p must lie in"):
        drop_positives(targets, 2)
    with pytest.raises(ValueError, match=r"shape \(N, m\)"):
        drop_positives(np.array([0, 1]), 0.5)
