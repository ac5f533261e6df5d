"""Open Images' and LVIS's verified labels read into tags tables with negatives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rmlc.data import read_lvis_labels, read_open_images_labels, read_tags_table, write_tags_table

DESCRIPTIONS = """LabelName,DisplayName
/m/01,Dog
/m/02,Cat
/m/03,Tree
/m/04,Jaguar
/m/05,Jaguar
"""

LABELS = """ImageID,Source,LabelName,Confidence
img1,verification,/m/01,1
img1,verification,/m/02,0
img1,crowdsource-verification,/m/01,1
img2,verification,/m/04,1
img2,verification,/m/05,0
img3,verification,/m/02,0
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_open_images_labels_become_positives_negatives_and_unknowns(tmp_path: Path) -> None:
    table = read_open_images_labels(
        write(tmp_path, "labels.csv", LABELS),
        write(tmp_path, "classes.csv", DESCRIPTIONS),
        image_prefix="train/",
    )
    # the classes verified somewhere, in the descriptions' order; shared names get their MID
    assert table.classes == ["Dog", "Cat", "Jaguar (/m/04)", "Jaguar (/m/05)"]
    assert table.images == ["train/img1.jpg", "train/img2.jpg", "train/img3.jpg"]
    np.testing.assert_array_equal(table.targets.toarray(), [[1, 0, 0, 0], [0, 0, 1, 0], [0] * 4])
    np.testing.assert_array_equal(
        table.negatives.toarray(), [[0, 1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    )
    np.testing.assert_array_equal(table.labeled, [True, True, True])  # img3: a negative only
    # written and read back as a user's table
    path = write_tags_table(tmp_path / "tags.csv", table)
    again = read_tags_table(path, classes=table.classes)
    assert (again.negatives != table.negatives).nnz == 0
    assert (again.targets != table.targets).nnz == 0


def test_open_images_classes_select_and_order_columns(tmp_path: Path) -> None:
    """Headerless descriptions (older releases); labels of classes not kept are skipped."""
    descriptions = write(tmp_path, "classes.csv", DESCRIPTIONS.split("\n", 1)[1])
    table = read_open_images_labels(
        write(tmp_path, "labels.csv", LABELS), descriptions, classes=["/m/02", "/m/03"]
    )
    assert table.classes == ["Cat", "Tree"]
    assert table.images == ["img1.jpg", "img3.jpg"]  # img2 verifies neither class
    np.testing.assert_array_equal(table.negatives.toarray(), [[1, 0], [1, 0]])
    assert table.targets.nnz == 0


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("ImageID,LabelName,Confidence\nimg1,/m/01,1\n", r"line 1: expected the header"),
        ("ImageID,Source,LabelName,Confidence\nimg1,machine,/m/01,0.7\n", r"line 2: confidence"),
        ("ImageID,Source,LabelName,Confidence\nimg1,v,/m/99,1\n", r"line 2: '/m/99' is not a"),
    ],
)
def test_bad_open_images_files_are_named(tmp_path: Path, labels: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_open_images_labels(
            write(tmp_path, "labels.csv", labels), write(tmp_path, "c.csv", DESCRIPTIONS)
        )


def test_contradicting_verifications_are_left_unknown_or_refused(tmp_path: Path) -> None:
    labels = write(tmp_path, "labels.csv", LABELS + "img3,crowdsource-verification,/m/02,1\n")
    descriptions = write(tmp_path, "c.csv", DESCRIPTIONS)
    with pytest.warns(UserWarning, match=r"1 entries verified both present and absent"):
        table = read_open_images_labels(labels, descriptions)
    assert not table.known_mask([2]).any() and not table.labeled[2]  # img3 knew only that
    with pytest.raises(ValueError, match=r"img3.jpg: 'Cat'"):
        read_open_images_labels(labels, descriptions, conflicts="error")


def lvis(tmp_path: Path, **changes) -> Path:
    data = {
        "categories": [{"id": 3, "name": "zebra"}, {"id": 1, "name": "aerosol_can"}],
        "images": [
            {
                "id": 10,
                "coco_url": "http://images.cocodataset.org/train2017/000000000010.jpg",
                "neg_category_ids": [1],
                "not_exhaustive_category_ids": [],
            },
            {
                "id": 11,
                "file_name": "val/11.jpg",
                "neg_category_ids": [],
                "not_exhaustive_category_ids": [1],
            },
            {
                "id": 12,
                "file_name": "val/12.jpg",
                "neg_category_ids": [],
                "not_exhaustive_category_ids": [],
            },
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 3},
            {"id": 2, "image_id": 10, "category_id": 3},
        ],
    }
    data.update(changes)
    return write(tmp_path, "lvis.json", json.dumps(data))


def test_lvis_annotations_and_negative_ids_become_a_table(tmp_path: Path) -> None:
    table = read_lvis_labels(lvis(tmp_path))
    assert table.classes == ["aerosol_can", "zebra"]  # sorted by category id
    assert table.images == ["train2017/000000000010.jpg", "val/11.jpg", "val/12.jpg"]
    # image 10: zebra annotated twice (one positive), aerosol_can verified absent;
    # image 11: aerosol_can not exhaustively annotated = present; image 12: nothing known
    np.testing.assert_array_equal(table.targets.toarray(), [[0, 1], [1, 0], [0, 0]])
    np.testing.assert_array_equal(table.negatives.toarray(), [[1, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(table.labeled, [True, True, False])


def test_bad_lvis_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not an LVIS annotation file \(no 'categories'\)"):
        read_lvis_labels(write(tmp_path, "x.json", json.dumps({"images": [], "annotations": []})))
    bad = lvis(tmp_path, annotations=[{"id": 1, "image_id": 10, "category_id": 7}])
    with pytest.raises(ValueError, match=r"an annotation names category 7, not defined"):
        read_lvis_labels(bad)
    both = lvis(tmp_path, annotations=[{"id": 1, "image_id": 10, "category_id": 1}])
    with pytest.raises(ValueError, match=r"1 entries verified both present and absent"):
        read_lvis_labels(both, conflicts="error")
