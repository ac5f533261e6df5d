"""CIFAR-10, STL-10 (torchvision), MS-COCO (pycocotools) and NUS-WIDE on written fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rmlc.data import load_cifar10, load_coco, load_nus_wide, load_stl10
from rmlc.data.nus_wide import normalize_nus_wide_path

from .writers import (
    NUS_CONCEPTS,
    NUS_IMAGES,
    NUS_TEST,
    NUS_TRAIN,
    STL_CLASSES,
    write_cifar10,
    write_coco,
    write_nus_wide,
    write_stl10,
)

# --- CIFAR-10 ---------------------------------------------------------------------------


def test_cifar10_fixture_fails_torchvision_md5_check(tmp_path: Path) -> None:
    import torchvision  # here, not at collection: seconds of every worker's start

    write_cifar10(tmp_path)
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.CIFAR10(str(tmp_path), train=True)
    with pytest.raises(ValueError, match=r"MD5.*data_batch_1.*verify=False"):
        load_cifar10(tmp_path, train=True)


def test_cifar10_loads_with_verify_false(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path, per_batch=2)
    train = load_cifar10(tmp_path, train=True, verify=False)
    assert train.images.shape == (10, 3, 32, 32) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, written["train_images"])
    np.testing.assert_array_equal(train.labels, written["train_labels"])
    assert train.labels.dtype == np.int64
    assert train.classes == [f"class{i}" for i in range(10)]
    images, labels, _ = load_cifar10(tmp_path, train=False, verify=False)
    np.testing.assert_array_equal(images, written["test_images"])
    np.testing.assert_array_equal(labels, written["test_labels"])


def test_cifar10_missing_and_broken_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3.*download=True"):
        load_cifar10(tmp_path, verify=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"cifar-10-batches-py.*pickle"):
        load_cifar10(tmp_path, verify=False)


# --- STL-10 ---------------------------------------------------------------------------


def test_stl10_fixture_fails_torchvision_md5_check(tmp_path: Path) -> None:
    import torchvision

    write_stl10(tmp_path)
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.STL10(str(tmp_path), split="train")
    with pytest.raises(ValueError, match=r"MD5.*verify=False"):
        load_stl10(tmp_path, split="train")


def test_stl10_splits_and_folds(tmp_path: Path) -> None:
    written = write_stl10(tmp_path)
    train = load_stl10(tmp_path, "train", verify=False)
    assert train.images.shape == (12, 3, 96, 96) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, written["train_images"])
    np.testing.assert_array_equal(train.labels, written["train_labels"])
    assert train.classes == list(STL_CLASSES)
    for fold in (0, 9):
        images, labels, _ = load_stl10(tmp_path, "train", folds=fold, verify=False)
        keep = written["folds"][fold]
        np.testing.assert_array_equal(images, written["train_images"][keep])
        np.testing.assert_array_equal(labels, written["train_labels"][keep])
    test = load_stl10(tmp_path, "test", verify=False)
    np.testing.assert_array_equal(test.images, written["test_images"])
    unlabeled = load_stl10(tmp_path, "unlabeled", verify=False)
    np.testing.assert_array_equal(unlabeled.images, written["unlabeled_images"])
    np.testing.assert_array_equal(unlabeled.labels, [-1, -1, -1])
    both = load_stl10(tmp_path, "train+unlabeled", verify=False)
    assert both.images.shape[0] == 15 and (both.labels[12:] == -1).all()


def test_stl10_bad_files_are_named(tmp_path: Path) -> None:
    write_stl10(tmp_path)
    folder = tmp_path / "stl10_binary"
    with pytest.raises(ValueError, match="folds"):
        load_stl10(tmp_path, "test", folds=1, verify=False)
    with pytest.raises(ValueError, match="folds"):
        load_stl10(tmp_path, "train", folds=10, verify=False)
    (folder / "fold_indices.txt").write_text("0 1 99\n" * 10)
    with pytest.raises(ValueError, match=r"fold_indices\.txt: line 1: index 99"):
        load_stl10(tmp_path, "train", folds=0, verify=False)
    (folder / "train_y.bin").write_bytes(bytes([1, 2, 3]))
    with pytest.raises(
        ValueError, match=r"train_y\.bin holds 3 labels but .*train_X\.bin holds 12"
    ):
        load_stl10(tmp_path, "train", verify=False)
    (folder / "test_X.bin").write_bytes(bytes(100))
    (folder / "train_y.bin").write_bytes(bytes([0] * 12))
    with pytest.raises(ValueError, match=r"train_y\.bin: labels must be 1\.\.10, found 0"):
        load_stl10(tmp_path, "train", verify=False)
    (folder / "train_y.bin").write_bytes(bytes([1] * 12))
    with pytest.raises(ValueError, match=r"test_X\.bin: 100 bytes is not a whole number"):
        load_stl10(tmp_path, "train", verify=False)
    (folder / "unlabeled_X.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"unlabeled_X\.bin"):
        load_stl10(tmp_path, "train", verify=False)


# --- MS-COCO --------------------------------------------------------------------------


def test_coco_targets_classes_and_order(tmp_path: Path) -> None:
    annotations = tmp_path / "instances_val2014.json"
    write_coco(annotations)
    coco = load_coco(annotations, tmp_path / "val2014")
    assert coco.image_ids == [10, 20, 30, 40]
    assert coco.category_ids == [1, 3, 18]
    assert coco.classes == ["person", "car", "dog"]
    assert coco.paths[0] == tmp_path / "val2014" / "COCO_val2014_000000000010.jpg"
    assert coco.targets.dtype == np.uint8
    np.testing.assert_array_equal(coco.targets, [[1, 0, 1], [0, 0, 1], [0, 1, 0], [0, 0, 0]])
    no_crowd = load_coco(annotations, tmp_path, include_crowd=False)
    np.testing.assert_array_equal(no_crowd.targets[2], [0, 0, 0])


def test_coco_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        load_coco(tmp_path / "missing.json", tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_coco(broken, tmp_path)
    path = tmp_path / "bad.json"
    dataset = write_coco(path)
    dataset["annotations"].append({"id": 99, "image_id": 10, "category_id": 5, "iscrowd": 0})
    path.write_text(json.dumps(dataset))
    with pytest.raises(ValueError, match=r"bad\.json: annotation 99 .*unknown category id 5"):
        load_coco(path, tmp_path)
    del dataset["categories"]
    dataset["annotations"] = []
    path.write_text(json.dumps(dataset))
    with pytest.raises(ValueError, match=r"bad\.json: missing the list 'categories'"):
        load_coco(path, tmp_path)


# --- NUS-WIDE -------------------------------------------------------------------------


def test_nus_wide_all_train_test(tmp_path: Path) -> None:
    targets = write_nus_wide(tmp_path)
    everything = load_nus_wide(tmp_path, "all")
    assert everything.targets.shape == (6, 81) and everything.targets.dtype == np.uint8
    np.testing.assert_array_equal(everything.targets, targets)
    assert everything.classes == list(NUS_CONCEPTS)
    assert everything.paths[0] == tmp_path / "Flickr" / "actor" / "0001_2124494179.jpg"
    for split, rows in (("train", NUS_TRAIN), ("test", NUS_TEST)):
        part = load_nus_wide(tmp_path, split, image_root=tmp_path / "images")
        np.testing.assert_array_equal(part.targets, targets[list(rows)])
        expected = [tmp_path / "images" / NUS_IMAGES[i].replace("\\", "/") for i in rows]
        assert part.paths == expected


def test_nus_wide_prefers_train_test_label_files(tmp_path: Path) -> None:
    targets = write_nus_wide(tmp_path)
    folder = tmp_path / "Groundtruth" / "TrainTestLabels"
    folder.mkdir()
    own = 1 - targets[list(NUS_TEST)]  # deliberately different from AllLabels
    for j, concept in enumerate(NUS_CONCEPTS):
        column = "\n".join(str(v) for v in own[:, j]) + "\n"
        (folder / f"Labels_{concept}_Test.txt").write_text(column)
    np.testing.assert_array_equal(load_nus_wide(tmp_path, "test").targets, own)


def test_nus_wide_bad_files(tmp_path: Path) -> None:
    write_nus_wide(tmp_path)
    labels = tmp_path / "Groundtruth" / "AllLabels" / "Labels_concept07.txt"
    labels.write_text("0\n1\n0\n")
    with pytest.raises(ValueError, match=r"Labels_concept07\.txt has 3 lines but .*Imagelist"):
        load_nus_wide(tmp_path)
    labels.write_text("0\n1\n0\n2\n0\n0\n")
    with pytest.raises(ValueError, match=r"Labels_concept07\.txt: line 4: expected 0 or 1"):
        load_nus_wide(tmp_path)
    labels.unlink()
    with pytest.raises(FileNotFoundError, match=r"Labels_concept07\.txt"):
        load_nus_wide(tmp_path)
    (tmp_path / "Concepts81.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"Concepts81\.txt"):
        load_nus_wide(tmp_path)


def test_nus_wide_unknown_train_image(tmp_path: Path) -> None:
    write_nus_wide(tmp_path)
    (tmp_path / "ImageList" / "TrainImagelist.txt").write_text("zebra\\0001_1.jpg\n")
    with pytest.raises(ValueError, match=r"TrainImagelist\.txt: 1 images are not in"):
        load_nus_wide(tmp_path, "train")


def test_normalize_nus_wide_path() -> None:
    assert normalize_nus_wide_path("C:\\ImageData\\Flickr\\actor\\0001_1.jpg") == "actor/0001_1.jpg"
    assert normalize_nus_wide_path(" actor\\0001_1.jpg\r") == "actor/0001_1.jpg"


@pytest.mark.parametrize("folds", [True, 3.0, -1, 10])
def test_stl10_folds_must_be_an_integer_from_0_to_9(tmp_path, folds) -> None:
    with pytest.raises(ValueError, match="folds must be an integer"):
        load_stl10(tmp_path, "train", folds=folds)
