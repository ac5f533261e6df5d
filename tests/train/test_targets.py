"""SparseTargets: the trainer's sparse targets against the dense matrix they stand for."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from rmlc.train.targets import SparseTargets


@pytest.fixture
def dense() -> np.ndarray:
    rng = np.random.default_rng(0)
    targets = (rng.random((40, 13)) < 0.2).astype(np.float32)
    targets[5] = 0.0  # a row without positives
    return targets


def test_batches_densify_to_the_dense_rows(dense: np.ndarray) -> None:
    targets = SparseTargets(dense)
    assert targets.shape == (40, 13) and len(targets) == 40 and targets.nnz == int(dense.sum())
    rows = np.array([7, 0, 5, 39, 7])
    for index in (rows, torch.from_numpy(rows), list(rows)):
        batch = targets[index]
        assert batch.dtype == torch.float32
        np.testing.assert_array_equal(batch.numpy(), dense[rows])
    np.testing.assert_array_equal(targets[3].numpy(), dense[3])
    np.testing.assert_array_equal(targets.dense().numpy(), dense)
    mask = np.zeros(40, dtype=bool)
    mask[[1, 2]] = True
    np.testing.assert_array_equal(targets[mask].numpy(), dense[[1, 2]])


def test_accepts_signed_dense_and_sparse_input(dense: np.ndarray) -> None:
    signed = SparseTargets(2 * dense - 1)
    from_sparse = SparseTargets(scipy.sparse.csr_array(dense))
    from_tensor = SparseTargets(torch.from_numpy(dense))
    for targets in (signed, from_sparse, from_tensor):
        np.testing.assert_array_equal(targets.dense().numpy(), dense)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((3, 2), 0.5), "targets"),
        (np.zeros(4), "2-D"),
        (scipy.sparse.csr_array(np.array([[0, 2], [1, 0]])), "store 1"),
    ],
)
def test_bad_targets_are_refused(bad, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SparseTargets(bad)


def test_counts_and_take(dense: np.ndarray) -> None:
    targets = SparseTargets(dense)
    np.testing.assert_array_equal(targets.positives_per_class(), dense.sum(axis=0))
    np.testing.assert_array_equal(targets.positives_per_row(), dense.sum(axis=1))
    rows = torch.tensor([3, 9, 3])
    taken = targets.take(rows)
    assert isinstance(taken, SparseTargets)
    np.testing.assert_array_equal(taken.dense().numpy(), dense[[3, 9, 3]])


def test_copy_rows_reads_every_source_before_writing(dense: np.ndarray) -> None:
    targets = SparseTargets(dense)
    rows, sources = np.array([0, 1, 20]), np.array([1, 0, 0])  # a swap, and a chained read
    targets.copy_rows(torch.from_numpy(rows), torch.from_numpy(sources))
    expected = dense.copy()
    expected[rows] = dense[sources]
    np.testing.assert_array_equal(targets.dense().numpy(), expected)
    with pytest.raises(ValueError, match="source rows"):
        targets.copy_rows([1, 2], [3])


def test_take_is_a_copy(dense: np.ndarray) -> None:
    targets = SparseTargets(dense)
    copy = targets.take(slice(None))
    copy.copy_rows([0], [5])
    np.testing.assert_array_equal(targets.dense().numpy(), dense)


def test_state_round_trip_is_plain_tensors(dense: np.ndarray, tmp_path) -> None:
    targets = SparseTargets(dense)
    torch.save(targets.state_dict(), tmp_path / "t.pt")
    state = torch.load(tmp_path / "t.pt", weights_only=True)
    np.testing.assert_array_equal(SparseTargets.from_state(state).dense().numpy(), dense)
    # checkpoints of earlier versions hold the dense tensor
    older = SparseTargets.from_state(torch.from_numpy(dense))
    np.testing.assert_array_equal(older.dense().numpy(), dense)


def test_from_indices_checks_its_input() -> None:
    targets = SparseTargets.from_indices(np.array([0, 2, 2, 4]), np.array([3, 1, 0, 0]), 4)
    np.testing.assert_array_equal(
        targets.dense().numpy(), [[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    )
    with pytest.raises(ValueError, match=r"lie in \[0, 4\)"):
        SparseTargets.from_indices(np.array([0, 1]), np.array([4]), 4)
    with pytest.raises(ValueError, match="never decrease"):
        SparseTargets.from_indices(np.array([0, 2, 1]), np.array([0, 1]), 4)
    with pytest.raises(ValueError, match="ends at"):
        SparseTargets.from_indices(np.array([0, 1]), np.array([0, 1]), 4)


def test_a_positive_stored_twice_counts_once_and_the_input_is_unchanged() -> None:
    """A sparse matrix listing a label twice (CSR duplicates, or COO entries) holds one
    positive there, never a target of 2; the caller's matrix is left as it was."""
    csr = scipy.sparse.csr_array((np.ones(3), [1, 1, 2], [0, 3, 3]), shape=(2, 4))
    coo = scipy.sparse.coo_array((np.ones(3), ([0, 0, 0], [1, 1, 2])), shape=(2, 4))
    for matrix in (csr, coo):
        targets = SparseTargets(matrix)
        np.testing.assert_array_equal(targets.dense().numpy(), [[0, 1, 1, 0], [0, 0, 0, 0]])
        np.testing.assert_array_equal(targets.positives_per_class(), [0, 1, 1, 0])
    assert csr.nnz == 3 and coo.nnz == 3


def test_set_rows_replaces_those_rows_only(dense: np.ndarray) -> None:
    targets = SparseTargets(dense)
    rows = np.array([3, 0, 39])
    new = np.zeros((3, 13), dtype=np.float32)
    new[0, [1, 2]] = new[2, 12] = 1.0  # row 0 gets no positive at all
    expected = dense.copy()
    expected[rows] = new
    targets.set_rows(rows, new)
    np.testing.assert_array_equal(targets.dense().numpy(), expected)
    targets.set_rows(torch.tensor([5]), scipy.sparse.csr_array(dense[[1]]))
    expected[5] = dense[1]
    np.testing.assert_array_equal(targets.dense().numpy(), expected)
    with pytest.raises(ValueError, match="3 rows of 13 classes to set, got shape"):
        targets.set_rows(rows, new[:2])


def test_negatives_make_the_other_entries_unknown_and_travel_with_their_rows(tmp_path) -> None:
    positives = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]], np.uint8)
    negatives = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0], [1, 1, 0]], np.uint8)
    targets = SparseTargets(positives, negatives)
    assert targets.has_negatives and SparseTargets(positives).known([0]) is None
    np.testing.assert_array_equal(
        targets.known(np.array([0, 3])).numpy(), [[True, True, False], [True, True, True]]
    )
    taken = targets.take(np.array([3, 0]))
    np.testing.assert_array_equal(taken.known(slice(None)).numpy()[0], [True, True, True])
    # propagation copies a labeled row, with what it knew absent, into an unlabeled one
    targets.copy_rows(np.array([2]), np.array([0]))
    np.testing.assert_array_equal(targets.known([2]).numpy(), [[True, True, False]])
    np.testing.assert_array_equal(targets[2].numpy(), [1, 0, 0])
    # a row set from a prediction is known everywhere
    targets.set_rows(np.array([1]), np.array([[0, 0, 1]], np.uint8))
    np.testing.assert_array_equal(targets.known([1]).numpy(), [[True, True, True]])
    np.testing.assert_array_equal(targets[1].numpy(), [0, 0, 1])
    # a row set with its negatives keeps the rest unknown (the fill of unknown tags)
    targets.set_rows(np.array([1]), np.array([[1, 0, 0]], np.uint8), np.array([[0, 1, 0]]))
    np.testing.assert_array_equal(targets.known([1]).numpy(), [[True, True, False]])
    np.testing.assert_array_equal(targets[1].numpy(), [1, 0, 0])
    with pytest.raises(ValueError, match="apart from the positives"):
        targets.set_rows(np.array([1]), np.array([[1, 0, 0]]), np.array([[1, 0, 0]]))
    with pytest.raises(ValueError, match="targets without negatives"):
        SparseTargets(positives).set_rows(np.array([1]), positives[:1], negatives[:1])
    # checkpoints keep the negatives, as plain tensors
    path = tmp_path / "t.pt"
    torch.save(targets.state_dict(), path)
    again = SparseTargets.from_state(torch.load(path, weights_only=True))
    np.testing.assert_array_equal(again.known(slice(None)).numpy(), targets.known(slice(None)))
    np.testing.assert_array_equal(again.dense().numpy(), targets.dense().numpy())
    with pytest.raises(ValueError, match="both positive and verified absent"):
        SparseTargets(positives, positives)
    with pytest.raises(ValueError, match=r"negatives have shape \(1, 3\), targets \(4, 3\)"):
        SparseTargets(positives, negatives[:1])
