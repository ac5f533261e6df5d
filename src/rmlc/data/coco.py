"""MS-COCO (2014) multi-label targets from an instances annotation file, via pycocotools.

:func:`load_coco` turns ``instances_{train,val}2014.json`` into image paths and multi-hot
targets: column ``j`` is the ``j``-th category in ascending category id (COCO's 80 ids run
1..90 with gaps; the mapping is stable whatever the order of the file), an image is
positive for every category it has an annotation of (crowd annotations included unless
``include_crowd=False``). Images are in ascending image id. Images without annotations
are kept, with all-zero targets (about 1% of COCO 2014; drop them with
``targets.any(axis=1)`` if wanted).

pycocotools is an optional dependency (``pip install rmlc[coco]``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rmlc.data._common import PathLike, as_path

__all__ = ["CocoLabels", "load_coco"]


class CocoLabels(NamedTuple):
    """Multi-label view of a COCO annotation file.

    Attributes:
        paths: ``N`` image paths (``image_root / file_name``), ascending image id.
        targets: uint8 ``(N, m)`` multi-hot targets (``m = 80`` for COCO).
        classes: ``m`` category names, ascending category id.
        category_ids: ``m`` COCO category ids of the columns.
        image_ids: ``N`` COCO image ids of the rows.
    """

    paths: list[Path]
    targets: np.ndarray
    classes: list[str]
    category_ids: list[int]
    image_ids: list[int]


def _coco(path: Path) -> object:
    try:
        from pycocotools.coco import COCO
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_coco needs pycocotools: pip install 'rmlc[coco]' (or pycocotools)"
        ) from error
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    except (AssertionError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a COCO annotation file ({type(error).__name__}: {error})"
        ) from error


def load_coco(
    annotation_file: PathLike, image_root: PathLike, include_crowd: bool = True
) -> CocoLabels:
    """Read a COCO instances file as multi-label targets (see the module docstring).

    Args:
        annotation_file: e.g. ``annotations/instances_train2014.json``.
        image_root: folder of the images, e.g. ``train2014``.
        include_crowd: count ``iscrowd=1`` annotations as labels.

    Returns:
        :class:`CocoLabels`.

    Raises:
        FileNotFoundError: the annotation file does not exist.
        ValueError: naming the file: invalid JSON, missing ``images``/``categories``,
            duplicate ids, annotations of unknown images or categories.
    """
    path = as_path(annotation_file, "annotation_file")
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    coco = _coco(path)
    dataset = coco.dataset  # type: ignore[attr-defined]
    for key in ("images", "categories"):
        if not isinstance(dataset.get(key), list):
            raise ValueError(f"{path}: missing the list {key!r} of a COCO instances file")
    try:
        category_ids = sorted(int(category["id"]) for category in dataset["categories"])
        image_ids = sorted(int(image["id"]) for image in dataset["images"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: image or category without an integer 'id'") from error
    for name, ids in (("category", category_ids), ("image", image_ids)):
        repeated = sorted({i for i, j in itertools.pairwise(ids) if i == j})
        if repeated:
            raise ValueError(f"{path}: duplicate {name} id {repeated[0]}")
    column = {cid: j for j, cid in enumerate(category_ids)}
    row = {iid: i for i, iid in enumerate(image_ids)}
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in dataset["categories"]}
    files = {int(image["id"]): image.get("file_name") for image in dataset["images"]}
    missing_names = [iid for iid, name in files.items() if not isinstance(name, str)]
    if missing_names:
        raise ValueError(f"{path}: image id {missing_names[0]} has no 'file_name'")

    targets = np.zeros((len(image_ids), len(category_ids)), dtype=np.uint8)
    for annotation in dataset.get("annotations", []):
        if not include_crowd and annotation.get("iscrowd", 0):
            continue
        image_id, category_id = annotation.get("image_id"), annotation.get("category_id")
        if image_id not in row:
            raise ValueError(
                f"{path}: annotation {annotation.get('id')} refers to unknown image id {image_id}"
            )
        if category_id not in column:
            raise ValueError(
                f"{path}: annotation {annotation.get('id')} refers to unknown category id "
                f"{category_id}"
            )
        targets[row[image_id], column[category_id]] = 1
    root = as_path(image_root, "image_root")
    return CocoLabels(
        paths=[root / files[iid] for iid in image_ids],
        targets=targets,
        classes=[names[cid] for cid in category_ids],
        category_ids=category_ids,
        image_ids=image_ids,
    )
