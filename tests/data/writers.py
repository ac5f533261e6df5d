"""Writers of tiny on-disk fixtures in the exact formats of the real data sets.

Each function writes files under a folder the test owns (``tmp_path``) and returns what
it wrote, so that tests compare the loaders' output with the source arrays.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
STL_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


def write_cifar10(root: Path, per_batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """CIFAR-10 python pickle batches in ``root/cifar-10-batches-py``.

    Returns:
        ``train_images`` ``(5 * per_batch, 3, 32, 32)``, ``train_labels``, ``test_images``,
        ``test_labels`` as written.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    for name in (*CIFAR_BATCHES, "test_batch"):
        split = "test" if name == "test_batch" else "train"
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        batch_labels = rng.integers(0, 10, size=per_batch).tolist()
        batch = {
            "batch_label": f"fixture {name}",
            "labels": batch_labels,
            "data": images.reshape(per_batch, 3072),
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[split].append(images)
        labels[split] += batch_labels
    meta = {
        "label_names": [f"class{i}" for i in range(10)],
        "num_cases_per_batch": per_batch,
        "num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {
        "train_images": np.concatenate(written["train"]),
        "train_labels": np.array(labels["train"]),
        "test_images": np.concatenate(written["test"]),
        "test_labels": np.array(labels["test"]),
    }


def _write_stl_images(path: Path, images: np.ndarray) -> None:
    """STL-10 stores each channel column-major: write ``(N, 3, H, W)`` as ``(N, 3, W, H)``."""
    path.write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())


def write_stl10(
    root: Path, n_train: int = 12, n_test: int = 4, n_unlabeled: int = 3, seed: int = 0
) -> dict[str, np.ndarray]:
    """STL-10 binary files in ``root/stl10_binary`` (labels 1-based, 10 fold lines).

    Returns:
        ``train_images`` ``(n_train, 3, 96, 96)``, ``train_labels`` (0-based),
        ``test_images``, ``test_labels``, ``unlabeled_images``, ``folds`` (10 index arrays).
    """
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    arrays: dict[str, np.ndarray] = {}
    for split, count in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(count, 3, 96, 96), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count)
        _write_stl_images(folder / f"{split}_X.bin", images)
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    unlabeled = rng.integers(0, 256, size=(n_unlabeled, 3, 96, 96), dtype=np.uint8)
    _write_stl_images(folder / "unlabeled_X.bin", unlabeled)
    arrays["unlabeled_images"] = unlabeled
    folds = [np.sort(rng.choice(n_train, size=3, replace=False)) for _ in range(10)]
    (folder / "fold_indices.txt").write_text(
        "\n".join(" ".join(str(i) for i in fold) + " " for fold in folds) + "\n"
    )
    (folder / "class_names.txt").write_text("\n".join(STL_CLASSES) + "\n")
    arrays["folds"] = np.stack(folds)
    return arrays


def write_coco(path: Path) -> dict:
    """A tiny ``instances`` file: unordered ids, category ids with gaps, a crowd label,
    an image without annotations."""
    dataset = {
        "info": {"description": "fixture"},
        "images": [
            {"id": 30, "file_name": "COCO_val2014_000000000030.jpg", "height": 8, "width": 8},
            {"id": 10, "file_name": "COCO_val2014_000000000010.jpg", "height": 8, "width": 8},
            {"id": 20, "file_name": "COCO_val2014_000000000020.jpg", "height": 8, "width": 8},
            {"id": 40, "file_name": "COCO_val2014_000000000040.jpg", "height": 8, "width": 8},
        ],
        "categories": [
            {"id": 18, "name": "dog", "supercategory": "animal"},
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 10,
                "category_id": 1,
                "iscrowd": 0,
                "area": 4.0,
                "bbox": [0, 0, 2, 2],
                "segmentation": [[0, 0, 2, 0, 2, 2]],
            },
            {
                "id": 2,
                "image_id": 10,
                "category_id": 18,
                "iscrowd": 0,
                "area": 4.0,
                "bbox": [1, 1, 2, 2],
                "segmentation": [[1, 1, 3, 1, 3, 3]],
            },
            {
                "id": 3,
                "image_id": 10,
                "category_id": 1,
                "iscrowd": 0,
                "area": 4.0,
                "bbox": [4, 4, 2, 2],
                "segmentation": [[4, 4, 6, 4, 6, 6]],
            },
            {
                "id": 4,
                "image_id": 30,
                "category_id": 3,
                "iscrowd": 1,
                "area": 4.0,
                "bbox": [0, 0, 2, 2],
                "segmentation": {"counts": [0, 4, 60], "size": [8, 8]},
            },
            {
                "id": 5,
                "image_id": 20,
                "category_id": 18,
                "iscrowd": 0,
                "area": 4.0,
                "bbox": [0, 0, 2, 2],
                "segmentation": [[0, 0, 2, 0, 2, 2]],
            },
        ],
    }
    path.write_text(json.dumps(dataset))
    return dataset


NUS_CONCEPTS = tuple(f"concept{i:02d}" for i in range(81))
NUS_IMAGES = (
    "actor\\0001_2124494179.jpg",
    "actor\\0002_174174086.jpg",
    "airport\\0001_2036931476.jpg",
    "airport\\0002_1114312345.jpg",
    "beach\\0001_466934426.jpg",
    "beach\\0002_2163417898.jpg",
)
NUS_TRAIN = (0, 2, 3, 5)
NUS_TEST = (1, 4)


def write_nus_wide(root: Path, seed: int = 0) -> np.ndarray:
    """Official NUS-WIDE layout (Concepts81, ImageList, Groundtruth/AllLabels).

    Returns:
        the uint8 ``(6, 81)`` targets written, in ``Imagelist.txt`` order.
    """
    rng = np.random.default_rng(seed)
    targets = (rng.random((len(NUS_IMAGES), len(NUS_CONCEPTS))) < 0.3).astype(np.uint8)
    (root / "ImageList").mkdir(parents=True)
    (root / "Groundtruth" / "AllLabels").mkdir(parents=True)
    (root / "Concepts81.txt").write_text("\n".join(NUS_CONCEPTS) + "\n")
    listing = "\r\n".join(f"C:\\ImageData\\Flickr\\{name}" for name in NUS_IMAGES) + "\r\n"
    (root / "ImageList" / "Imagelist.txt").write_text(listing)
    for split, rows in (("Train", NUS_TRAIN), ("Test", NUS_TEST)):
        text = "\r\n".join(NUS_IMAGES[i] for i in rows) + "\r\n"
        (root / "ImageList" / f"{split}Imagelist.txt").write_text(text)
    for j, concept in enumerate(NUS_CONCEPTS):
        column = "\n".join(str(v) for v in targets[:, j]) + "\n"
        (root / "Groundtruth" / "AllLabels" / f"Labels_{concept}.txt").write_text(column)
    return targets


def write_image(path: Path, size: tuple[int, int] = (12, 10), seed: int = 0) -> np.ndarray:
    """Random RGB image saved by PIL (format from the suffix); returns its HWC pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels
