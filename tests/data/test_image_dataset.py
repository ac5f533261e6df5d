"""ImageListDataset with good, zero-byte, truncated, non-image and missing files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rmlc.data import BadImageError, ImageListDataset, check_image_file

from .writers import write_image


@pytest.fixture
def image_folder(tmp_path: Path) -> tuple[Path, list[str], dict[str, np.ndarray]]:
    pixels = {
        "good0.png": write_image(tmp_path / "good0.png", seed=0),
        "sub/good1.jpg": write_image(tmp_path / "sub" / "good1.jpg", size=(32, 32), seed=1),
        "good2.png": write_image(tmp_path / "good2.png", seed=2),
    }
    (tmp_path / "empty.png").write_bytes(b"")
    write_image(tmp_path / "full.jpg", size=(64, 64), seed=3)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    names = [
        "good0.png",
        "empty.png",
        "sub/good1.jpg",
        "truncated.jpg",
        "missing.png",
        "text.png",
        "good2.png",
    ]
    return tmp_path, names, pixels


def test_check_image_file_reasons(image_folder) -> None:
    root, _, _ = image_folder
    assert check_image_file(root / "good0.png") is None
    assert check_image_file(root / "empty.png") == "empty file (0 bytes)"
    assert "truncated" in check_image_file(root / "truncated.jpg")
    assert check_image_file(root / "missing.png") == "file not found"
    assert "UnidentifiedImageError" in check_image_file(root / "text.png")


def test_raise_mode_names_the_bad_file(image_folder) -> None:
    root, names, pixels = image_folder
    targets = np.eye(len(names), 3, dtype=np.uint8)
    dataset = ImageListDataset(names, targets, root=root)
    assert len(dataset) == len(names)
    image, target, index = dataset[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 12, 10)
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pixels["good0.png"])
    np.testing.assert_array_equal(target.numpy(), [1, 0, 0])
    assert index == 0
    for position, name in [(1, "empty.png"), (3, "truncated.jpg"), (4, "missing.png")]:
        with pytest.raises(BadImageError, match=name.replace(".", r"\.")) as info:
            dataset[position]
        assert info.value.path.endswith(name)
    with pytest.raises(BadImageError, match=r"empty\.png.*\(4 bad files in all\)"):
        dataset.validate()


def test_skip_mode_drops_bad_files_with_a_warning(image_folder) -> None:
    root, names, _ = image_folder
    targets = np.arange(len(names))
    dataset = ImageListDataset(names, targets, root=root, on_error="skip")
    with pytest.warns(UserWarning, match=r"skipped 4 of 7 images.*empty\.png.*truncated\.jpg"):
        assert len(dataset) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the scan happens once
        items = [dataset[i] for i in range(len(dataset))]
    assert [index for _, _, index in items] == [0, 2, 6]
    assert [int(target) for _, target, _ in items] == [0, 2, 6]
    np.testing.assert_array_equal(dataset.indices, [0, 2, 6])


def test_transform_mode_and_unlabeled(image_folder) -> None:
    root, _, _ = image_folder
    dataset = ImageListDataset(
        [str(root / "good0.png")], transform=lambda image: image.size, mode="L"
    )
    image, target, index = dataset[0]
    assert image == (10, 12) and int(target) == -1 and index == 0
    gray = ImageListDataset(["good0.png"], root=root, mode="L")[0][0]
    assert gray.shape == (1, 12, 10)


def test_bad_arguments(image_folder) -> None:
    root, names, _ = image_folder
    with pytest.raises(ValueError, match="on_error"):
        ImageListDataset(names, root=root, on_error="ignore")
    with pytest.raises(ValueError, match="targets must have 7 rows"):
        ImageListDataset(names, np.zeros((3, 2)), root=root)
