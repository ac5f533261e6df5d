"""IDX reading, Fashion-MNIST loading (written files, Debian files) and the embedded subset."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rmlc.data import (
    FASHION_MNIST_CLASSES,
    load_embedded_fashion_mnist,
    load_fashion_mnist,
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
)
from rmlc.data.fashion_mnist import DEBIAN_FASHION_MNIST_ROOT, fashion_mnist_files
from rmlc.data.idx import read_idx_pair

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "src" / "rmlc" / "data" / "embedded"
DEBIAN_PRESENT = fashion_mnist_files("train", DEBIAN_FASHION_MNIST_ROOT) is not None
needs_debian = pytest.mark.skipif(
    not DEBIAN_PRESENT, reason="Debian package dataset-fashion-mnist not installed"
)


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


def write_split(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))


@pytest.fixture
def tiny_split() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7)


# --- IDX format -----------------------------------------------------------------------


def test_idx_round_trip_gzip_and_plain(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-images-idx3-ubyte.gz", "a-images-idx3-ubyte"):
        write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(read_idx_images(tmp_path / name), images)
    assert (tmp_path / "a-images-idx3-ubyte.gz").read_bytes()[:2] == b"\x1f\x8b"
    floats = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f.idx", floats)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), floats)


def test_idx_hand_written_header(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(2049, (3,), bytes([7, 0, 9]))))
    labels = read_idx_labels(path)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [7, 0, 9])


def test_idx_truncated_data_names_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(2051, (2, 28, 28), bytes(28 * 28 + 5))))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*truncated IDX data"):
        read_idx_images(path)


def test_idx_truncated_gzip_stream_names_file(tmp_path: Path) -> None:
    content = gzip.compress(idx_bytes(2051, (2, 28, 28), bytes(2 * 28 * 28)))
    path = tmp_path / "cut.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz.*gzip"):
        read_idx_images(path)


def test_idx_truncated_header_and_extra_bytes(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=r"short.*shorter than the 4-byte magic"):
        read_idx(tmp_path / "short")
    (tmp_path / "dims").write_bytes(idx_bytes(2051, (2,), b""))
    with pytest.raises(ValueError, match=r"dims.*truncated IDX header"):
        read_idx(tmp_path / "dims")
    (tmp_path / "long").write_bytes(idx_bytes(2049, (2,), bytes(3)))
    with pytest.raises(ValueError, match=r"long.*1 unexpected bytes"):
        read_idx(tmp_path / "long")


def test_idx_wrong_magic_names_file(tmp_path: Path) -> None:
    path = tmp_path / "swapped-labels.gz"
    write_idx(path, np.zeros((3, 28, 28), dtype=np.uint8))  # an image file
    with pytest.raises(ValueError, match=r"swapped-labels\.gz.*wrong magic number 2051.*2049"):
        read_idx_labels(path)
    (tmp_path / "junk").write_bytes(b"PK\x03\x04" + bytes(10))
    with pytest.raises(ValueError, match=r"junk.*not an IDX file"):
        read_idx(tmp_path / "junk")


def test_idx_missing_file_and_mismatched_counts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.gz"):
        read_idx(tmp_path / "nothing.gz")
    write_idx(tmp_path / "i.gz", np.zeros((3, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "l.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"i\.gz holds 3 images but .*l\.gz holds 4 labels"):
        read_idx_pair(tmp_path / "i.gz", tmp_path / "l.gz")


# --- load_fashion_mnist ----------------------------------------------------------------


def test_load_from_root_and_torchvision_layout(tmp_path: Path, tiny_split) -> None:
    images, labels = tiny_split
    write_split(tmp_path, "t10k", images, labels)
    got_images, got_labels = load_fashion_mnist("test", root=tmp_path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int64
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", images)  # torchvision keeps them unzipped
    write_idx(raw / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    np.testing.assert_array_equal(load_fashion_mnist("train", root=tmp_path / "tv")[1], labels)


def test_load_missing_files_explains_remedies(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("train", root=tmp_path)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    assert str(tmp_path) in message


def test_load_rejects_bad_labels_and_arguments(tmp_path: Path, tiny_split) -> None:
    images, labels = tiny_split
    labels = labels.copy()
    labels[3] = 12
    write_split(tmp_path, "train", images, labels)
    with pytest.raises(ValueError, match=r"train-images.*labels must be in 0\.\.9, found 12"):
        load_fashion_mnist("train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("valid", root=tmp_path)
    with pytest.raises(ValueError, match="source"):
        load_fashion_mnist("train", source="web")


@needs_debian
def test_debian_files_sizes_and_classes() -> None:
    for split, count in (("train", 60000), ("test", 10000)):
        images, labels = load_fashion_mnist(split)
        assert images.shape == (count, 28, 28) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels, minlength=10), [count // 10] * 10)
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[1] == "Trouser" and FASHION_MNIST_CLASSES[9] == "Ankle boot"


# --- embedded subset ------------------------------------------------------------------


def test_embedded_subset_sizes_balance_and_files() -> None:
    for split, per_class in (("train", 600), ("test", 100)):
        images, labels, indices = load_embedded_fashion_mnist(split, return_indices=True)
        assert images.shape == (10 * per_class, 28, 28) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels, minlength=10), [per_class] * 10)
        assert np.unique(indices).size == indices.size
        via_loader = load_fashion_mnist(split, source="embedded")
        np.testing.assert_array_equal(via_loader[0], images)
    npz = EMBEDDED / "fashion_mnist_subset.npz"
    assert npz.stat().st_size <= 5 * 1024 * 1024
    licence = (EMBEDDED / "LICENSE-fashion-mnist.txt").read_text()
    assert "MIT" in licence and "Zalando SE" in licence and "2017" in licence
    assert "Permission is hereby granted" in licence


def test_embedded_subset_returns_copies() -> None:
    images, _ = load_embedded_fashion_mnist("test")
    images[:] = 0
    assert load_embedded_fashion_mnist("test")[0].any()


@needs_debian
@pytest.mark.slow
def test_embedded_subset_is_reproducible_from_debian_files() -> None:
    for split in ("train", "test"):
        images, labels, indices = load_embedded_fashion_mnist(split, return_indices=True)
        full_images, full_labels = load_fashion_mnist(split)
        np.testing.assert_array_equal(images, full_images[indices])
        np.testing.assert_array_equal(labels, full_labels[indices])
    spec = importlib.util.spec_from_file_location(
        "make_embedded_subset", REPO / "scripts" / "make_embedded_subset.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    arrays, _ = script.build_arrays(DEBIAN_FASHION_MNIST_ROOT)
    fresh = hashlib.sha256(script.npz_bytes(arrays)).hexdigest()
    assert fresh == hashlib.sha256((EMBEDDED / "fashion_mnist_subset.npz").read_bytes()).hexdigest()
