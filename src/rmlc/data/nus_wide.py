"""NUS-WIDE multi-label targets from the official release layout.

Expected under ``root`` (as unpacked from the official ``ImageList``, ``Groundtruth`` and
``ConceptsList`` archives)::

    Concepts81.txt  (or ConceptsList/Concepts81.txt)  81 concept names, one per line
    ImageList/Imagelist.txt        all 269,648 images (C:\\ImageData\\Flickr\\actor\\0001_2.jpg)
    ImageList/TrainImagelist.txt   161,789 training images (actor\\0001_2.jpg)
    ImageList/TestImagelist.txt    107,859 test images
    Groundtruth/AllLabels/Labels_<concept>.txt             one 0/1 per line, Imagelist order
    Groundtruth/TrainTestLabels/Labels_<concept>_Train.txt (optional; idem for _Test)

``split="all"`` reads ``Imagelist.txt`` with ``AllLabels``. ``split="train"``/``"test"``
read their image list with ``TrainTestLabels`` when those files are all present, else pick
their rows out of ``AllLabels`` by matching the image paths against ``Imagelist.txt``.
Image paths are normalised to ``<concept folder>/<file>`` (backslashes become slashes and
the ``C:\\ImageData\\Flickr\\`` prefix is dropped) and joined to ``image_root`` (default
``root/Flickr``). Missing files, label files whose length differs from the image list
and values other than 0/1 are errors naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from rmlc.checks import check_choice
from rmlc.data._common import PathLike, as_path, shorten

__all__ = ["NusWideLabels", "load_nus_wide", "normalize_nus_wide_path"]

NusWideSplit = Literal["all", "train", "test"]
_LISTS = {"all": "Imagelist.txt", "train": "TrainImagelist.txt", "test": "TestImagelist.txt"}
_SUFFIXES = {"train": "Train", "test": "Test"}


class NusWideLabels(NamedTuple):
    """Multi-label view of NUS-WIDE.

    Attributes:
        paths: ``N`` image paths under ``image_root``.
        targets: uint8 ``(N, 81)`` multi-hot targets.
        classes: the 81 concept names (``Concepts81.txt`` order).
    """

    paths: list[Path]
    targets: np.ndarray
    classes: list[str]


def normalize_nus_wide_path(entry: str) -> str:
    """Relative image path: ``C:\\ImageData\\Flickr\\actor\\1.jpg`` -> ``actor/1.jpg``."""
    path = entry.strip().replace("\\", "/")
    marker = "ImageData/"
    if marker in path:
        path = path.split(marker, 1)[1]
    path = path.removeprefix("Flickr/")
    return path.lstrip("/")


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"NUS-WIDE {what} not found: {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]


def _concepts(root: Path) -> list[str]:
    candidates = [root / "Concepts81.txt", root / "ConceptsList" / "Concepts81.txt"]
    for path in candidates:
        if path.is_file():
            names = [line for line in _read_lines(path, "concept list") if line]
            if not names:
                raise ValueError(f"{path}: no concept names")
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ValueError(f"{path}: duplicate concepts {shorten(repeated)}")
            return names
    raise FileNotFoundError(
        f"NUS-WIDE concept list not found: looked for {' and '.join(map(str, candidates))}"
    )


def _image_list(path: Path) -> list[str]:
    lines = _read_lines(path, "image list")
    while lines and not lines[-1]:
        lines.pop()
    blank = [i + 1 for i, line in enumerate(lines) if not line]
    if blank:
        raise ValueError(f"{path}: blank lines {shorten(blank)} inside the image list")
    return [normalize_nus_wide_path(line) for line in lines]


def _label_column(path: Path, count: int, list_file: Path) -> np.ndarray:
    lines = _read_lines(path, "label file")
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) != count:
        raise ValueError(f"{path} has {len(lines)} lines but {list_file} lists {count} images")
    bad = [i for i, value in enumerate(lines) if value not in ("0", "1")]
    if bad:
        raise ValueError(
            f"{path}: line {bad[0] + 1}: expected 0 or 1, found {lines[bad[0]]!r} "
            f"({len(bad)} bad lines)"
        )
    return np.array(lines, dtype=np.uint8)


def load_nus_wide(
    root: PathLike, split: NusWideSplit = "all", image_root: PathLike | None = None
) -> NusWideLabels:
    """Read NUS-WIDE image paths and 81-concept targets (layout in the module docstring).

    Args:
        root: the NUS-WIDE folder.
        split: ``"all"``, ``"train"`` or ``"test"``.
        image_root: folder of the concept image folders (default ``root/Flickr``).

    Returns:
        :class:`NusWideLabels` with uint8 ``(N, 81)`` targets.

    Raises:
        FileNotFoundError: naming the missing list or label file.
        ValueError: naming the file: length mismatch, bad values, unknown images.
    """
    root = as_path(root, "root")
    check_choice(split, tuple(_LISTS), "split")
    classes = _concepts(root)
    list_file = root / "ImageList" / _LISTS[split]
    images = _image_list(list_file)
    truth = root / "Groundtruth"

    if split != "all":
        suffix = _SUFFIXES[split]
        own = [truth / "TrainTestLabels" / f"Labels_{c}_{suffix}.txt" for c in classes]
        if all(path.is_file() for path in own):
            columns = [_label_column(path, len(images), list_file) for path in own]
            targets = np.stack(columns, axis=1)
            return NusWideLabels(_join(image_root, root, images), targets, classes)

    all_file = root / "ImageList" / _LISTS["all"]
    all_images = images if split == "all" else _image_list(all_file)
    label_files = [truth / "AllLabels" / f"Labels_{c}.txt" for c in classes]
    targets = np.stack([_label_column(p, len(all_images), all_file) for p in label_files], 1)
    if split != "all":
        row = {path: i for i, path in enumerate(all_images)}
        unknown = [path for path in images if path not in row]
        if unknown:
            raise ValueError(
                f"{list_file}: {len(unknown)} images are not in {all_file}: {shorten(unknown)}"
            )
        targets = targets[[row[path] for path in images]]
    return NusWideLabels(_join(image_root, root, images), targets, classes)


def _join(image_root: PathLike | None, root: Path, images: list[str]) -> list[Path]:
    base = root / "Flickr" if image_root is None else as_path(image_root, "image_root")
    return [base / image for image in images]
