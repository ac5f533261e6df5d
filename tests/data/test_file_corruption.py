"""corrupt_file on tags tables and features files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rmlc.data import corrupt_file, load_features, read_tags_table, save_features


def write_table(path: Path, n: int = 200, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    classes = ["cat", "dog", "car", "tree", "sky"]
    lines = ["image,labels"]
    for i in range(n):
        if i % 10 == 9:
            lines.append(f"img/{i}.jpg,")  # unlabeled
            continue
        chosen = [c for c in classes if rng.random() < 0.35] or ["sky"]
        lines.append(f"img/{i}.jpg,{'|'.join(chosen)}")
    path.write_text("\n".join(lines) + "\n")


def test_corrupt_tags_table(tmp_path: Path) -> None:
    source = tmp_path / "tags.csv"
    write_table(source)
    report = corrupt_file(source, tmp_path / "noisy.jsonl", rate=0.5, seed=1)
    before, after = read_tags_table(source), read_tags_table(tmp_path / "noisy.jsonl")
    before.targets, after.targets = before.targets.toarray(), after.targets.toarray()
    assert after.images == before.images and after.classes == before.classes
    np.testing.assert_array_equal(after.labeled, before.labeled)
    unlabeled = ~before.labeled
    assert not after.targets[unlabeled].any()
    np.testing.assert_array_equal(after.targets.sum(axis=0), before.targets.sum(axis=0))
    assert report["kind"] == "tags" and report["n_samples"] == 200 and report["n_labeled"] == 180
    assert report["n_corrupted"] == 90
    corrupted = np.array(report["corrupted_indices"])
    assert before.labeled[corrupted].all()
    changed = np.flatnonzero((after.targets != before.targets).any(axis=1))
    assert set(changed.tolist()) <= set(corrupted.tolist())
    assert report["n_changed"] == changed.size
    json.dumps(report)  # serialisable for the CLI


def test_corrupt_tags_table_with_drop(tmp_path: Path) -> None:
    source = tmp_path / "tags.csv"
    write_table(source)
    report = corrupt_file(source, tmp_path / "dropped.csv", drop=0.6, seed=2)
    before, after = read_tags_table(source), read_tags_table(tmp_path / "dropped.csv")
    before.targets, after.targets = before.targets.toarray(), after.targets.toarray()
    assert not (after.targets > before.targets).any()
    assert report["n_dropped"] == int(before.targets.sum() - after.targets.sum())
    became = report["became_unlabeled"]
    assert became and not after.labeled[became].any() and before.labeled[became].all()


def test_corrupt_features_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4)).astype(np.float32)
    Y = (rng.random((100, 6)) < 0.3).astype(np.uint8)
    with (tmp_path / "f.npz").open("wb") as handle:
        np.savez(handle, X=X, Y=Y, ids=np.arange(100))
    report = corrupt_file(tmp_path / "f.npz", tmp_path / "g.npz", rate=0.2, drop=0.1, seed=0)
    X2, Y2 = load_features(tmp_path / "g.npz")
    np.testing.assert_array_equal(X2, X)
    assert Y2.dtype == Y.dtype and report["n_corrupted"] == 20 and report["kind"] == "features"
    assert report["n_dropped"] == int(Y.sum() - Y2.sum()) + 0  # paper protocol keeps the sum
    with np.load(tmp_path / "g.npz") as archive:
        np.testing.assert_array_equal(archive["ids"], np.arange(100))
    save_features(tmp_path / "single.npz", X, np.arange(100) % 3)
    corrupt_file(tmp_path / "single.npz", tmp_path / "single_noisy.npz", rate=0.3)
    with pytest.raises(ValueError, match="drop= needs multi-label"):
        corrupt_file(tmp_path / "single.npz", tmp_path / "x.npz", drop=0.3)


def test_corrupt_file_errors(tmp_path: Path) -> None:
    source = tmp_path / "tags.csv"
    write_table(source, n=20)
    (tmp_path / "exists.csv").write_text("")
    with pytest.raises(FileExistsError, match=r"exists\.csv"):
        corrupt_file(source, tmp_path / "exists.csv", rate=0.1)
    corrupt_file(source, tmp_path / "exists.csv", rate=0.1, overwrite=True)
    with pytest.raises(ValueError, match="must differ"):
        corrupt_file(source, source, rate=0.1, overwrite=True)
    with pytest.raises(ValueError, match=r"out\.npz: a tags table must be written as"):
        corrupt_file(source, tmp_path / "out.npz", rate=0.1)
    save_features(tmp_path / "nolabels.npz", np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"nolabels\.npz: no labels to corrupt"):
        corrupt_file(tmp_path / "nolabels.npz", tmp_path / "o.npz", rate=0.1)
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(ValueError, match=r"data\.txt: cannot corrupt a \.txt file"):
        corrupt_file(tmp_path / "data.txt", tmp_path / "o.txt", rate=0.1)
    with pytest.raises(FileNotFoundError, match=r"absent\.csv"):
        corrupt_file(tmp_path / "absent.csv", tmp_path / "o.csv")
    with pytest.raises(ValueError, match="rate must lie in"):
        corrupt_file(source, tmp_path / "o.csv", rate=2)
