"""Labeled/unlabeled splits, stratified multi-label subsets, validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from rmlc.data import split_labeled, subsample_multilabel, train_validation_split


def assert_partition(first: np.ndarray, second: np.ndarray, n: int) -> None:
    assert first.dtype == np.int64 and second.dtype == np.int64
    assert not set(first.tolist()) & set(second.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([first, second])), np.arange(n))
    assert (np.diff(first) > 0).all() and (np.diff(second) > 0).all()


def test_split_labeled_per_class() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 20, 10])
    labeled, unlabeled = split_labeled(labels, n_per_class=5, seed=1)
    assert_partition(labeled, unlabeled, labels.size)
    np.testing.assert_array_equal(np.bincount(labels[labeled]), [5, 5, 5, 5])
    again = split_labeled(labels, n_per_class=5, seed=1)[0]
    np.testing.assert_array_equal(labeled, again)
    assert not np.array_equal(labeled, split_labeled(labels, n_per_class=5, seed=2)[0])


def test_split_labeled_fraction() -> None:
    labels = np.repeat(np.arange(3), [100, 40, 3])
    labeled, unlabeled = split_labeled(labels, fraction=0.1, seed=0)
    assert_partition(labeled, unlabeled, labels.size)
    np.testing.assert_array_equal(np.bincount(labels[labeled]), [10, 4, 1])  # at least one


def test_split_labeled_errors() -> None:
    labels = np.repeat(np.arange(2), [10, 3])
    with pytest.raises(ValueError, match="class 1 has only 3 samples"):
        split_labeled(labels, n_per_class=4)
    with pytest.raises(ValueError, match="exactly one"):
        split_labeled(labels)
    with pytest.raises(ValueError, match="exactly one"):
        split_labeled(labels, n_per_class=1, fraction=0.5)
    with pytest.raises(ValueError, match="fraction must lie in"):
        split_labeled(labels, fraction=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        split_labeled(labels - 1, n_per_class=1)


def test_subsample_multilabel_keeps_frequencies_better_than_random() -> None:
    rng = np.random.default_rng(0)
    targets = (rng.random((3000, 20)) < rng.uniform(0.01, 0.3, 20)).astype(np.uint8)
    expected = 0.1 * targets.sum(axis=0)
    subset = subsample_multilabel(targets, 0.1, seed=0)
    assert subset.size == 300 and np.unique(subset).size == 300
    deviation = np.abs(targets[subset].sum(axis=0) - expected).sum()
    random_deviation = np.mean(
        [
            np.abs(targets[rng.choice(3000, 300, replace=False)].sum(axis=0) - expected).sum()
            for _ in range(20)
        ]
    )
    assert deviation < 0.3 * random_deviation
    np.testing.assert_array_equal(subset, subsample_multilabel(targets, 0.1, seed=0))
    labeled, unlabeled = split_labeled(targets.astype(np.int8) * 2 - 1, fraction=0.2, seed=3)
    assert_partition(labeled, unlabeled, 3000)
    assert labeled.size == 600


def test_subsample_multilabel_edges() -> None:
    targets = np.zeros((10, 3), dtype=np.uint8)
    targets[:4, 0] = 1
    assert subsample_multilabel(targets, 0.0).size == 0
    assert subsample_multilabel(targets, 1.0).size == 10
    assert subsample_multilabel(targets, 0.5).size == 5
    assert targets[subsample_multilabel(targets, 0.5), 0].sum() == 2


def test_train_validation_split() -> None:
    train, validation = train_validation_split(101, 0.2, seed=0)
    assert_partition(train, validation, 101)
    assert validation.size == 20
    np.testing.assert_array_equal(validation, train_validation_split(101, 0.2, seed=0)[1])
    with pytest.raises(ValueError, match="n must be"):
        train_validation_split(-1, 0.2)
