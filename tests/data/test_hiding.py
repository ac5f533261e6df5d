"""Hiding tags as unknown: the partial-label settings, as functions and ``rmlc corrupt``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rmlc.data import corrupt_file, hide_tags, keep_single_positive, read_tags_table


def targets(n: int = 400, m: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, m)) < 0.35).astype(np.uint8)


def test_hiding_hides_known_entries_at_the_rate_asked_and_nests_in_p() -> None:
    y = targets()
    half, report = hide_tags(y, 0.5, seed=3)
    quarter, _ = hide_tags(y, 0.25, seed=3)
    assert half.dtype == bool and half.shape == y.shape
    assert (half <= quarter).all()  # what 0.5 keeps, 0.25 keeps: nested sets
    positives, negatives = int(y.sum()), int(y.size - y.sum())
    assert report.n_positives == positives and report.n_negatives == negatives
    assert report.hidden_positives == int((y.astype(bool) & ~half).sum())
    assert abs(report.hidden_positives / positives - 0.5) < 0.06  # each hidden w.p. 1/2
    assert abs(report.hidden_negatives / negatives - 0.5) < 0.05
    assert (hide_tags(y, 0.5, seed=3)[0] == half).all()  # deterministic
    assert not (hide_tags(y, 0.5, seed=4)[0] == half).all()
    assert hide_tags(y, 0.0)[0].all() and not hide_tags(y, 1.0)[0].any()


def test_hiding_never_reveals_an_entry_that_was_unknown() -> None:
    y = targets()
    known = np.random.default_rng(1).random(y.shape) < 0.5
    after, report = hide_tags(y, 0.3, seed=0, known=known)
    assert not (after & ~known).any()
    assert report.n_positives == int((known & y.astype(bool)).sum())


def test_single_positive_keeps_one_known_positive_per_image_uniformly() -> None:
    y = np.zeros((3000, 3), np.uint8)
    y[:, 0] = 1
    y[:, 2] = 1
    y[-1] = 0  # an image without positives keeps nothing
    known, report = keep_single_positive(y, seed=0)
    assert (known.sum(axis=1)[:-1] == 1).all() and not known[-1].any()
    assert not known[:, 1].any() and (known <= y.astype(bool)).all()
    assert abs(known[:-1, 0].mean() - 0.5) < 0.05  # uniform among the positives
    assert report.emptied_rows.tolist() == [2999]
    assert report.hidden_negatives == report.n_negatives


def test_bad_known_masks_are_named() -> None:
    with pytest.raises(ValueError, match=r"known must be a bool array of shape \(400, 6\)"):
        hide_tags(targets(), 0.5, known=np.ones((400, 6), np.uint8))
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got 1.5"):
        hide_tags(targets(), 1.5)


def write_table(path: Path) -> Path:
    rows = [
        f"{i}.jpg,{'|'.join(c for c, on in zip('abcd', bits, strict=True) if on)}"
        for i, bits in enumerate(targets(60, 4, seed=2))
    ]
    path.write_text("image,labels\n" + "\n".join(rows) + "\n")
    return path


def test_corrupt_hide_writes_a_table_whose_unknown_tags_are_unlisted(tmp_path: Path) -> None:
    source = write_table(tmp_path / "tags.csv")
    report = corrupt_file(source, tmp_path / "hidden.csv", hide=0.5, seed=1)
    before = read_tags_table(source, classes=list("abcd"))
    after = read_tags_table(tmp_path / "hidden.csv", classes=list("abcd"))
    assert after.has_negatives
    known = after.known_mask()
    positives = before.targets.toarray().astype(bool)
    labeled = before.labeled
    # what is still listed is what was true: a hidden positive is unknown, never negative
    np.testing.assert_array_equal(after.targets.toarray().astype(bool), positives & known)
    np.testing.assert_array_equal(
        after.negatives.toarray().astype(bool), ~positives & known & labeled[:, None]
    )
    expected, _ = hide_tags(positives[labeled], 0.5, seed=1)
    np.testing.assert_array_equal(known[labeled], expected)
    assert report["hidden_positives"] == int((positives[labeled] & ~expected).sum())
    assert report["became_unlabeled"] == np.flatnonzero(labeled & ~known.any(axis=1)).tolist()
    # hiding further works on a table with negatives; rate and drop are refused on it
    corrupt_file(tmp_path / "hidden.csv", tmp_path / "more.jsonl", hide=0.5, seed=2)
    more = read_tags_table(tmp_path / "more.jsonl", classes=list("abcd"))
    assert not (more.known_mask() & ~known).any()
    with pytest.raises(ValueError, match="rate and drop need a table without a negatives"):
        corrupt_file(tmp_path / "hidden.csv", tmp_path / "x.csv", rate=0.3)


def test_corrupt_single_positive_and_refusals(tmp_path: Path) -> None:
    source = write_table(tmp_path / "tags.csv")
    corrupt_file(source, tmp_path / "single.csv", single_positive=True)
    single = read_tags_table(tmp_path / "single.csv", classes=list("abcd"))
    assert single.negatives.nnz == 0
    assert (np.diff(single.targets.indptr)[single.labeled] == 1).all()
    with pytest.raises(ValueError, match="hide and single_positive are two settings"):
        corrupt_file(source, tmp_path / "y.csv", hide=0.5, single_positive=True)
    np.savez(tmp_path / "f.npz", X=np.zeros((3, 2)), Y=np.eye(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="a features file has no place for unknown tags"):
        corrupt_file(tmp_path / "f.npz", tmp_path / "g.npz", hide=0.5)


def test_the_corrupt_command_hides_tags(tmp_path: Path, capsys) -> None:
    from rmlc.cli import main

    source = write_table(tmp_path / "tags.csv")
    assert main(["corrupt", str(source), str(tmp_path / "out.csv"), "--hide", "0.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["hide"] == 0.5 and report["hidden_negatives"] > 0
    assert read_tags_table(tmp_path / "out.csv").has_negatives


def test_the_corrupt_command_names_rows_left_without_a_known_tag(tmp_path: Path, capsys) -> None:
    from rmlc.cli import main

    source = tmp_path / "tags.csv"
    source.write_text("image,labels\na.jpg,a\nb.jpg,b\n")
    out = tmp_path / "out.csv"
    assert main(["corrupt", str(source), str(out), "--hide", "1.0"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["became_unlabeled"] == [0, 1]
    assert "2 labeled row(s) lost every known tag" in captured.err
    assert "(line 2, 3 of" in captured.err and "--empty-labels unlabeled" in captured.err
    assert main(["corrupt", str(source), str(tmp_path / "out.jsonl"), "--hide", "1.0"]) == 0
    assert "(line 1, 2 of" in capsys.readouterr().err  # JSONL: no header line


def test_data_stats_reports_the_known_fraction_per_class(tmp_path: Path, capsys) -> None:
    from rmlc.cli import main

    path = tmp_path / "t.csv"
    path.write_text("image,labels,negatives\na.jpg,dog,cat\nb.jpg,cat,\nc.jpg,,\nd.jpg,,dog\n")
    assert main(["data-stats", "--table", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 images (3 labeled, 1 unlabeled), 2 classes, tags verified absent" in out
    # cat: positive in b, absent in a, unknown in d: known in 2 of 3 labeled images
    assert "  cat           1         1   66.67%" in out
    assert "  dog           1         1   66.67%" in out
