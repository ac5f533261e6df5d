"""Tags tables with a ``negatives`` column: positive, verified absent, unknown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from rmlc.data import TagsTable, read_tags_table, write_tags_table

CSV = """image,labels,negatives
a.jpg,dog|person,cat
b.jpg,cat,
c.jpg,,
d.jpg,,dog|bird
"""

JSONL = (
    '{"image": "a.jpg", "labels": ["dog", "person"], "negatives": ["cat"]}\n'
    '{"image": "b.jpg", "labels": "cat", "negatives": null}\n'
    '{"image": "c.jpg", "labels": [], "negatives": []}\n'
    '{"image": "d.jpg", "labels": null, "negatives": "dog|bird"}\n'
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text"), [("t.csv", CSV), ("t.jsonl", JSONL)])
def test_a_tag_is_positive_verified_absent_or_unknown(tmp_path: Path, name: str, text: str):
    table = read_tags_table(write(tmp_path, name, text))
    assert table.has_negatives
    assert table.classes == ["bird", "cat", "dog", "person"]  # negatives name classes too
    np.testing.assert_array_equal(
        table.targets.toarray(), [[0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        table.negatives.toarray(), [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]]
    )
    # a row with verified negatives only is labeled; one with neither is unlabeled
    np.testing.assert_array_equal(table.labeled, [True, True, False, True])
    np.testing.assert_array_equal(
        table.known_mask([0, 3]), [[False, True, True, True], [True, False, True, False]]
    )
    assert table.negatives_of(3) == ["bird", "dog"]
    # per class, known in how many of the 3 labeled rows: bird 1, cat 2, dog 2, person 1
    np.testing.assert_allclose(table.known_fraction(), [1 / 3, 2 / 3, 2 / 3, 1 / 3])


def test_without_the_column_every_absent_tag_is_negative(tmp_path: Path) -> None:
    table = read_tags_table(write(tmp_path, "t.csv", "image,labels\na.jpg,x\nb.jpg,y\n"))
    assert not table.has_negatives and table.negatives is None
    assert table.known_mask().all() and table.known_mask().shape == (2, 2)
    np.testing.assert_array_equal(table.known_fraction(), [1.0, 1.0])
    assert table.negatives_of(0) == []


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_negatives_survive_a_round_trip_and_a_change_of_format(tmp_path: Path, suffix: str):
    table = read_tags_table(write(tmp_path, "t.csv", CSV))
    again = read_tags_table(write_tags_table(tmp_path / f"out{suffix}", table))
    assert again.classes == table.classes and again.images == table.images
    assert (again.targets != table.targets).nnz == 0
    assert (again.negatives != table.negatives).nnz == 0
    np.testing.assert_array_equal(again.labeled, table.labeled)


def test_a_table_without_negatives_is_written_in_the_two_column_format(tmp_path: Path):
    table = read_tags_table(write(tmp_path, "t.csv", "image,labels\na.jpg,x\n"))
    path = write_tags_table(tmp_path / "out.jsonl", table)
    assert json.loads(path.read_text()) == {"image": "a.jpg", "labels": ["x"]}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("t.csv", "image,labels,negatives\na.jpg,x,y\nb.jpg,x|y,y|z\n", r"line 3: 'y' listed both"),
        ("t.csv", "image,labels,negatives\na.jpg,x\n", r"line 2: expected 3 columns"),
        ("t.csv", "image,labels,absent\na.jpg,x,y\n", r"line 1: expected the header"),
        (
            "t.jsonl",
            '{"image": "a.jpg", "labels": "x", "negatives": "y"}\n'
            '{"image": "b.jpg", "labels": "x"}\n',
            r"line 2: the first record has a 'negatives' field and this one has none",
        ),
        (
            "t.jsonl",
            '{"image": "a.jpg", "labels": "x"}\n'
            '{"image": "b.jpg", "labels": "x", "negatives": []}\n',
            r"line 2: the first record has no 'negatives' field and this one has one",
        ),
        (
            "t.jsonl",
            '{"image": "a.jpg", "labels": "x", "negatives": 3}\n',
            r"line 1: 'negatives' must be a list of strings",
        ),
    ],
)
def test_bad_negatives_are_named_with_their_line(tmp_path: Path, name, text, message) -> None:
    with pytest.raises(ValueError, match=message):
        read_tags_table(write(tmp_path, name, text))


def test_an_unknown_negative_tag_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "image,labels,negatives\na.jpg,x,\nb.jpg,x,zebra\n")
    with pytest.raises(ValueError, match=r"line 3 \(row 2\): unknown label 'zebra'"):
        read_tags_table(path, classes=["x", "y"])


def test_the_table_refuses_contradictions_and_negatives_on_unlabeled_rows() -> None:
    targets = scipy.sparse.csr_array(np.array([[1, 0], [0, 0]], np.uint8))
    with pytest.raises(ValueError, match=r"both positive and verified absent: row 0: 'x'"):
        TagsTable(
            ["a", "b"], targets, np.array([True, True]), ["x", "y"], negatives=[[1, 1], [0, 0]]
        )
    with pytest.raises(ValueError, match=r"unlabeled rows 1 have verified negatives"):
        TagsTable(
            ["a", "b"], targets, np.array([True, False]), ["x", "y"], negatives=[[0, 1], [0, 1]]
        )
    with pytest.raises(ValueError, match=r"negatives must have shape \(2, 2\)"):
        TagsTable(["a", "b"], targets, np.array([True, True]), ["x", "y"], negatives=[[0, 1]])


def test_a_labeled_row_with_nothing_listed_is_refused_when_written(tmp_path: Path) -> None:
    table = TagsTable(
        ["a", "b"], [[1, 0], [0, 0]], np.array([True, True]), ["x", "y"], negatives=[[0, 0], [0, 0]]
    )
    with pytest.raises(ValueError, match=r"1 labeled rows have no tag, positive or verified"):
        write_tags_table(tmp_path / "t.csv", table)
    write_tags_table(tmp_path / "t.csv", table, empty_as_unlabeled=True)
    np.testing.assert_array_equal(read_tags_table(tmp_path / "t.csv").labeled, [True, False])


def test_a_large_sparse_table_with_negatives_stays_sparse(tmp_path: Path) -> None:
    """20,000 classes: the known entries of a batch, not of the table, are made dense."""
    rows = ["image,labels,negatives"] + [
        f"{i}.jpg,c{i % 20000},c{(i + 7) % 20000}" for i in range(300)
    ]
    path = write(tmp_path, "t.csv", "\n".join(rows) + "\n")
    table = read_tags_table(path, classes=[f"c{j}" for j in range(20000)])
    assert table.negatives.nnz == 300 and table.targets.nnz == 300
    known = table.known_mask([5])
    assert known.shape == (1, 20000) and known.sum() == 2 and known[0, 5] and known[0, 12]
