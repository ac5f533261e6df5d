"""Fashion-MNIST: the full IDX files (Debian package or torchvision) and the embedded subset.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; MIT licence, Zalando Research) has 60,000
training and 10,000 test grayscale images of 28x28 pixels in 10 classes
(:data:`FASHION_MNIST_CLASSES`). Two sources are offered:

* ``source="full"``: the original IDX gzip files, looked up in ``root`` -- by default the
  Debian package ``dataset-fashion-mnist`` (:data:`DEBIAN_FASHION_MNIST_ROOT`), then
  torchvision's download folder :data:`DEFAULT_DOWNLOAD_ROOT`. With ``download=True``
  missing files are fetched by :class:`torchvision.datasets.FashionMNIST`.
* ``source="embedded"``: a class-balanced subset shipped inside the package
  (``rmlc/data/embedded/fashion_mnist_subset.npz``; 600 training and 100 test images per
  class, built by ``scripts/make_embedded_subset.py``), always available offline.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Literal, overload

import numpy as np

from rmlc.checks import check_choice
from rmlc.data._common import PathLike, as_path
from rmlc.data.idx import read_idx_pair

__all__ = [
    "DEBIAN_FASHION_MNIST_ROOT",
    "DEFAULT_DOWNLOAD_ROOT",
    "EMBEDDED_SUBSET_FILE",
    "FASHION_MNIST_CLASSES",
    "fashion_mnist_files",
    "load_embedded_fashion_mnist",
    "load_fashion_mnist",
]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEBIAN_FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DOWNLOAD_ROOT = Path.home() / ".cache" / "rmlc" / "fashion-mnist"
EMBEDDED_SUBSET_FILE = "fashion_mnist_subset.npz"

Split = Literal["train", "test"]
Source = Literal["full", "embedded"]

_PREFIXES = {"train": "train", "test": "t10k"}
_IMAGE_SHAPE = (28, 28)


def _check_split(split: str) -> str:
    return check_choice(split, tuple(_PREFIXES), "split")


def fashion_mnist_files(split: Split, root: PathLike) -> tuple[Path, Path] | None:
    """Locate the image and label IDX files of ``split`` under ``root``.

    Looks for ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with or without ``.gz``,
    directly in ``root`` and in torchvision's layout ``root/FashionMNIST/raw``.

    Returns:
        ``(images_path, labels_path)``, or None when no complete pair is found.
    """
    prefix = _PREFIXES[_check_split(split)]
    root = as_path(root, "root")
    for folder in (root, root / "FashionMNIST" / "raw"):
        for suffix in (".gz", ""):
            images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
            labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    return None


def _check_arrays(
    images: np.ndarray, labels: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE or images.dtype != np.uint8:
        raise ValueError(
            f"{where}: expected uint8 images of shape (N, 28, 28), got {images.dtype} "
            f"{images.shape}"
        )
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= len(FASHION_MNIST_CLASSES)))
    if bad.size:
        raise ValueError(
            f"{where}: labels must be in 0..9, found {labels[bad[0]]} at index {bad[0]} "
            f"({bad.size} bad labels)"
        )
    return images, labels


def _not_found(split: str, roots: list[Path]) -> FileNotFoundError:
    prefix = _PREFIXES[split]
    looked = ", ".join(str(root) for root in roots)
    return FileNotFoundError(
        f"Fashion-MNIST {split} files ({prefix}-images-idx3-ubyte.gz, "
        f"{prefix}-labels-idx1-ubyte.gz) not found in {looked}. Install the Debian package "
        f"('apt-get install dataset-fashion-mnist', files in {DEBIAN_FASHION_MNIST_ROOT}), "
        "pass root= to the folder holding them, call with download=True to let torchvision "
        f"download them (into root, default {DEFAULT_DOWNLOAD_ROOT}), or use "
        "source='embedded' for the 7,000-image subset shipped with rmlc."
    )


def load_fashion_mnist(
    split: Split = "train",
    root: PathLike | None = None,
    download: bool = False,
    source: Source = "full",
) -> tuple[np.ndarray, np.ndarray]:
    """Load a Fashion-MNIST split as NumPy arrays.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: folder with the IDX files (or torchvision's ``FashionMNIST/raw`` below it);
            default: the Debian package folder, then :data:`DEFAULT_DOWNLOAD_ROOT`.
        download: if the files are missing, download them with torchvision into ``root``
            (default :data:`DEFAULT_DOWNLOAD_ROOT`).
        source: ``"full"`` for the files above, ``"embedded"`` for the packaged subset
            (``root`` and ``download`` are then ignored).

    Returns:
        ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)`` in 0..9.

    Raises:
        FileNotFoundError: files missing and ``download=False`` (the message explains the
            Debian package and ``download=True``).
        ValueError: bad split/source, or damaged files (naming the file).
    """
    _check_split(split)
    if source == "embedded":
        images, labels = load_embedded_fashion_mnist(split)
        return images, labels
    if source != "full":
        raise ValueError(f"source must be 'full' or 'embedded', got {source!r}")
    roots = (
        [DEBIAN_FASHION_MNIST_ROOT, DEFAULT_DOWNLOAD_ROOT]
        if root is None
        else [as_path(root, "root")]
    )
    for folder in roots:
        found = fashion_mnist_files(split, folder)
        if found is not None:
            images, labels = read_idx_pair(*found)
            return _check_arrays(images, labels, f"{found[0]} / {found[1]}")
    if not download:
        raise _not_found(split, roots)
    return _download(split, roots[-1])


def _download(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Download with torchvision (network access; never exercised by the tests)."""
    from torchvision.datasets import FashionMNIST

    root.mkdir(parents=True, exist_ok=True)
    dataset = FashionMNIST(str(root), train=split == "train", download=True)
    images = dataset.data.numpy().astype(np.uint8)
    labels = dataset.targets.numpy().astype(np.int64)
    return _check_arrays(images, labels, f"torchvision FashionMNIST in {root}")


@functools.lru_cache(maxsize=1)
def _embedded_arrays() -> dict[str, np.ndarray]:
    resource = resources.files("rmlc.data") / "embedded" / EMBEDDED_SUBSET_FILE
    if not resource.is_file():
        raise FileNotFoundError(
            f"embedded Fashion-MNIST subset missing from the installed package: {resource}; "
            "regenerate it with 'python scripts/make_embedded_subset.py'"
        )
    with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        if key not in arrays:
            raise ValueError(f"{resource}: array {key!r} missing (found {sorted(arrays)})")
    for key in arrays:
        arrays[key].setflags(write=False)
    return arrays


@overload
def load_embedded_fashion_mnist(
    split: Split = ..., return_indices: Literal[False] = ...
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_embedded_fashion_mnist(
    split: Split, return_indices: Literal[True]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def load_embedded_fashion_mnist(
    split: Split = "train", return_indices: bool = False
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load the Fashion-MNIST subset shipped inside the package.

    Args:
        split: ``"train"`` (6,000 images, 600 per class) or ``"test"`` (1,000, 100 per class).
        return_indices: also return the images' indices in the original IDX files.

    Returns:
        ``(images, labels)`` -- uint8 ``(N, 28, 28)`` and int64 ``(N,)`` -- and, if asked,
        the int64 ``(N,)`` source indices. The arrays are fresh copies.
    """
    _check_split(split)
    arrays = _embedded_arrays()
    images, labels = _check_arrays(
        arrays[f"{split}_images"].copy(), arrays[f"{split}_labels"], EMBEDDED_SUBSET_FILE
    )
    if return_indices:
        return images, labels, arrays[f"{split}_indices"].astype(np.int64)
    return images, labels
