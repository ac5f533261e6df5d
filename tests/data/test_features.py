"""Precomputed features: .npz / .npy, good and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rmlc.data import load_features, save_features


def test_npz_round_trip_with_labels(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(5, 3))
    Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=np.int8)
    save_features(tmp_path / "f.npz", X, Y)
    X2, Y2 = load_features(tmp_path / "f.npz")
    assert X2.dtype == np.float32 and X2.shape == (5, 3)
    np.testing.assert_allclose(X2, X.astype(np.float32))
    np.testing.assert_array_equal(Y2, Y)
    save_features(tmp_path / "single.npz", X, np.arange(5))
    assert load_features(tmp_path / "single.npz")[1].tolist() == [0, 1, 2, 3, 4]


def test_npy_and_npz_without_labels(tmp_path: Path) -> None:
    X = np.ones((4, 2), dtype=np.float64)
    save_features(tmp_path / "f.npy", X)
    save_features(tmp_path / "g.npz", X)
    for name in ("f.npy", "g.npz"):
        X2, Y2 = load_features(tmp_path / name)
        assert Y2 is None and X2.dtype == np.float32
    with pytest.raises(ValueError, match=r"f\.npy: a \.npy file holds X only"):
        save_features(tmp_path / "f.npy", X, np.zeros(4, dtype=int))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"features": np.ones((2, 2))}, r"no array 'X' \(arrays found: features\)"),
        ({"X": np.ones((2, 2, 2))}, r"X must have shape \(N, d\), got 3 dimensions"),
        (
            {"X": np.array([[1.0, np.nan], [np.inf, 0]])},
            r"2 NaN or infinite values \(first in row 0",
        ),
        ({"X": np.ones((3, 2)), "Y": np.ones((2, 4))}, r"X has 3 rows but Y has 2"),
        ({"X": np.ones((2, 2)), "Y": np.array([[0, 2], [1, 0]])}, r"found values \{0, 1, 2\}"),
        ({"X": np.ones((2, 2)), "Y": np.array([0.5, 1.0])}, r"1-D Y must hold integer"),
        ({"X": np.array([["a", "b"]])}, r"X must be numeric"),
    ],
)
def test_bad_npz_files_name_the_file(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz.*" + message):
        load_features(path)


def test_unreadable_missing_and_wrong_suffix(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz: cannot read features"):
        load_features(tmp_path / "junk.npz")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(ValueError, match=r"junk\.npy: cannot read features"):
        load_features(tmp_path / "junk.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"objects\.npy: cannot read features"):
        load_features(tmp_path / "objects.npy")
    with pytest.raises(FileNotFoundError, match=r"absent\.npz"):
        load_features(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match=r"f\.csv: features must be a \.npz or \.npy"):
        load_features(tmp_path / "f.csv")
    with pytest.raises(ValueError, match=r"out\.npz: X has 1 NaN"):
        save_features(tmp_path / "out.npz", np.array([[np.nan]]))
    assert not (tmp_path / "out.npz").exists()
