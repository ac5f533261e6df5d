"""Tags tables (CSV / JSONL): reading, writing and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from rmlc.data import TagsTable, read_tags_table, write_tags_table

GOOD_CSV = """image,labels
img/a.jpg,dog|person
img/b.jpg,cat
img/c.jpg,
"img/d,with comma.jpg", person | cat
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_csv_infers_sorted_classes_and_unlabeled_rows(tmp_path: Path) -> None:
    table = read_tags_table(write(tmp_path, "tags.csv", GOOD_CSV))
    assert table.images == ["img/a.jpg", "img/b.jpg", "img/c.jpg", "img/d,with comma.jpg"]
    assert table.classes == ["cat", "dog", "person"]
    assert scipy.sparse.issparse(table.targets) and table.targets.format == "csr"
    np.testing.assert_array_equal(
        table.targets.toarray(), [[0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 0, 1]]
    )
    assert table.targets.dtype == np.uint8
    np.testing.assert_array_equal(table.labeled, [True, True, False, True])
    assert table.labels_of(3) == ["cat", "person"]


def test_read_csv_with_given_classes(tmp_path: Path) -> None:
    path = write(tmp_path, "tags.csv", GOOD_CSV)
    table = read_tags_table(path, classes=["person", "dog", "cat", "bird"])
    assert table.classes == ["person", "dog", "cat", "bird"]
    np.testing.assert_array_equal(table.targets.toarray()[0], [1, 1, 0, 0])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tags.csv", "image,labels\na.jpg,x\n\nb.jpg,\n   \nc.jpg,y\n\n"),
        (
            "tags.jsonl",
            '{"image": "a.jpg", "labels": ["x"]}\n\n{"image": "b.jpg", "labels": []}\n'
            '   \n{"image": "c.jpg", "labels": "y"}\n\n',
        ),
    ],
)
def test_every_line_is_accounted_for(tmp_path: Path, name: str, text: str) -> None:
    """Each row keeps its line; blank lines are skipped but their numbers are kept."""
    table = read_tags_table(write(tmp_path, name, text))
    offset = 1 if name.endswith(".csv") else 0  # the CSV header is line 1
    assert table.lines.tolist() == [1 + offset, 3 + offset, 5 + offset]
    assert table.blank_lines == [2 + offset, 4 + offset, 6 + offset]
    assert table.images == ["a.jpg", "b.jpg", "c.jpg"]
    np.testing.assert_array_equal(table.labeled, [True, False, True])


def test_unknown_label_names_file_row_and_label(tmp_path: Path) -> None:
    path = write(tmp_path, "tags.csv", GOOD_CSV)
    with pytest.raises(ValueError, match=r"tags\.csv: line 2 \(row 1\): unknown label 'dog'"):
        read_tags_table(path, classes=["cat", "person"])


def test_duplicate_images_name_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.csv", "image,labels\na.jpg,x\nb.jpg,y\na.jpg,y\n")
    with pytest.raises(ValueError, match=r"dup\.csv: 1 duplicate .*'a\.jpg' at lines 2 and 4"):
        read_tags_table(path)


def test_required_labels_name_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "tags.csv", GOOD_CSV)
    with pytest.raises(ValueError, match=r"tags\.csv: 1 rows have no labels.*lines 4"):
        read_tags_table(path, require_labels=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("a.jpg,dog\nb.jpg,cat\n", r"line 1: expected the header 'image,labels', found 'a\.jpg"),
        ("image,label\na.jpg,dog\n", "expected the header"),
        ("image,labels,extra\na.jpg,dog,1\n", "expected the header"),
        ("image,labels\na.jpg,dog,cat\n", r"line 2: expected 2 columns"),
        ("image,labels\n,dog\n", r"line 2: empty image path"),
    ],
)
def test_bad_csv_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(ValueError, match=r"bad\.csv.*" + message):
        read_tags_table(path)


def test_read_jsonl_lists_strings_and_nulls(tmp_path: Path) -> None:
    lines = [
        {"image": "a.jpg", "labels": ["dog", "person"]},
        {"image": "b.jpg", "labels": "cat|dog"},
        {"image": "c.jpg", "labels": None},
        {"image": "d.jpg", "labels": []},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    table = read_tags_table(write(tmp_path, "tags.jsonl", text))
    assert table.classes == ["cat", "dog", "person"]
    np.testing.assert_array_equal(
        table.targets.toarray(), [[0, 1, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(table.labeled, [True, True, False, False])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"image": "a.jpg"}\n', r"line 1: .*missing \['labels'\]"),
        ('{"image": "a.jpg", "labels": [], "tags": 1}\n', r"line 1: .*unexpected \['tags'\]"),
        ('{"image": "a.jpg", "labels": []}\n{"image": \n', r"line 2: invalid JSON"),
        ('["a.jpg", "dog"]\n', r"line 1: expected a JSON object"),
        ('{"image": "a.jpg", "labels": [1, 2]}\n', r"line 1: 'labels' must be a list of strings"),
        ('{"image": 3, "labels": []}\n', r"line 1: 'image' must be a string"),
    ],
)
def test_bad_jsonl_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.jsonl", text)
    with pytest.raises(ValueError, match=r"bad\.jsonl: " + message):
        read_tags_table(path)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.csv"):
        read_tags_table(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match=r"tags\.txt: unknown tags table format"):
        read_tags_table(write(tmp_path, "tags.txt", GOOD_CSV))
    table = read_tags_table(write(tmp_path, "tags.txt", GOOD_CSV), format="csv")
    assert len(table) == 4
    with pytest.raises(ValueError, match="duplicate class name 'cat'"):
        read_tags_table(tmp_path / "tags.txt", classes=["cat", "cat"], format="csv")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_write_read_round_trip(tmp_path: Path, suffix: str) -> None:
    table = read_tags_table(write(tmp_path, "tags.csv", GOOD_CSV))
    out = write_tags_table(tmp_path / f"copy{suffix}", table)
    again = read_tags_table(out, classes=table.classes)
    assert again.images == table.images
    np.testing.assert_array_equal(again.targets.toarray(), table.targets.toarray())
    np.testing.assert_array_equal(again.labeled, table.labeled)


def test_write_refuses_labeled_rows_without_labels(tmp_path: Path) -> None:
    table = TagsTable(
        ["a.jpg", "b.jpg"], np.array([[1, 0], [0, 0]]), np.array([True, True]), ["x", "y"]
    )
    with pytest.raises(ValueError, match=r"1 labeled rows have no positive label.*rows 1"):
        write_tags_table(tmp_path / "out.csv", table)
    write_tags_table(tmp_path / "out.csv", table, empty_as_unlabeled=True)
    np.testing.assert_array_equal(read_tags_table(tmp_path / "out.csv").labeled, [True, False])


def test_tags_table_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="targets must have shape"):
        TagsTable(["a"], np.zeros((2, 1)), np.array([True]), ["x"])
    with pytest.raises(ValueError, match="unlabeled rows 0 have positive targets"):
        TagsTable(["a"], np.ones((1, 1)), np.array([False]), ["x"])
    with pytest.raises(ValueError, match=r"bad class name 'a\|b'"):
        TagsTable(["a"], np.ones((1, 1)), np.array([True]), ["a|b"])


def test_reading_keeps_targets_sparse(tmp_path: Path) -> None:
    """20,000 images x 5,000 classes: dense uint8 targets would take 100 MB; reading holds
    the positives only (a CSR matrix), so its peak allocation stays a few MB."""
    import tracemalloc

    classes = [f"c{j}" for j in range(5000)]
    rows = [f"img/{i}.jpg,{classes[i % 5000]}|{classes[(7 * i) % 5000]}" for i in range(20000)]
    path = write(tmp_path, "big.csv", "image,labels\n" + "\n".join(rows) + "\n")
    tracemalloc.start()
    try:
        table = read_tags_table(path, classes=classes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    distinct = sum(len({i % 5000, (7 * i) % 5000}) for i in range(20000))  # a label twice: 1
    assert table.targets.shape == (20000, 5000) and table.targets.nnz == distinct
    assert peak < 30e6, f"peak {peak / 1e6:.0f} MB: the targets were made dense"
    assert table.labels_of(8) == [classes[8], classes[56]]


def test_reading_holds_rows_compactly(tmp_path: Path) -> None:
    """10,000 images with 8 labels each among 4,000 classes: reading keeps per row the path
    and a few numbers (about 400 bytes a row at its peak), not a tuple of a list of label
    strings (1,300 bytes a row; a 9-million-image table would need over 10 GB). A fifth of
    the rows and classes measured before (50,000 among 20,000): the same classes per row,
    and 388 bytes a row against 384 then."""
    import tracemalloc

    rng = np.random.default_rng(0)
    rows = [
        f"img/{i:07d}.jpg," + "|".join(f"c{j:05d}" for j in rng.choice(4_000, 8, replace=False))
        for i in range(10_000)
    ]
    path = write(tmp_path, "big.csv", "image,labels\n" + "\n".join(rows) + "\n")
    del rows
    tracemalloc.start()
    try:
        table = read_tags_table(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.targets.nnz == 80_000 and len(table.classes) <= 4_000
    assert peak / 10_000 < 600, f"{peak / 10_000:.0f} bytes per row at the peak"
    assert table.targets.has_canonical_format and table.classes == sorted(table.classes)


def test_a_sparse_label_listed_twice_is_written_once(tmp_path: Path) -> None:
    targets = scipy.sparse.csr_array((np.ones(2), [0, 0], [0, 2, 2]), shape=(2, 2))
    table = TagsTable(["a.jpg", "b.jpg"], targets, np.array([True, False]), ["cat", "dog"])
    assert table.labels_of(0) == ["cat"]
    assert "a.jpg,cat\n" in write_tags_table(tmp_path / "t.csv", table).read_text()
