"""Human-verified image-level labels (Open Images, LVIS) as tags tables with negatives.

Both data sets verify, per image, some classes as present and some as absent and leave the
rest unknown: read into a :class:`~rmlc.data.TagsTable` whose ``negatives`` hold the
verified-absent tags (write it with :func:`~rmlc.data.write_tags_table` for ``rmlc train``).
Everything stays sparse: Open Images has about 20,000 classes and 9 million images.

- :func:`read_open_images_labels`: the image-level labels file
  (``ImageID,Source,LabelName,Confidence``; ``Confidence`` 1 = verified present, 0 =
  verified absent) and the class-descriptions file (``LabelName,DisplayName``, with or
  without that header).
- :func:`read_lvis_labels`: an LVIS annotation file (``images`` with
  ``neg_category_ids`` and ``not_exhaustive_category_ids``, ``annotations``,
  ``categories``). At image level a category is present where it has an annotation or is
  listed as not exhaustively annotated (present, some instances unannotated), absent where
  it is in ``neg_category_ids``, and unknown elsewhere.

An image verified both present and absent for the same class (two sources disagreeing) is
``conflicts="unknown"`` (the default: the entry is left unknown, with a warning that counts
them) or ``"error"``.
"""

from __future__ import annotations

import array
import csv
import json
import warnings
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlparse

import numpy as np
import scipy.sparse

from rmlc.checks import check_choice
from rmlc.data._common import PathLike, as_path, shorten
from rmlc.data.tags_table import LABEL_SEPARATOR, TagsTable

__all__ = ["read_lvis_labels", "read_open_images_labels"]

Conflicts = Literal["unknown", "error"]
OPEN_IMAGES_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")


class _Entries:
    """Verified (image, class, present) triples, gathered compactly before the CSR build."""

    def __init__(self) -> None:
        self.rows, self.columns = array.array("q"), array.array("i")
        self.present = bytearray()

    def add(self, row: int, column: int, present: bool) -> None:
        self.rows.append(row)
        self.columns.append(column)
        self.present.append(1 if present else 0)


def _table(
    images: list[str], classes: list[str], entries: _Entries, conflicts: Conflicts, where: str
) -> TagsTable:
    """A tags table with negatives from verified entries; repeats of an entry count once."""
    shape = (len(images), len(classes))
    rows = np.frombuffer(entries.rows, np.int64)
    columns = np.frombuffer(entries.columns, np.int32)
    present = np.frombuffer(entries.present, np.uint8).astype(bool)

    def matrix(keep: np.ndarray) -> scipy.sparse.csr_array:
        built = scipy.sparse.csr_array(
            (np.ones(int(keep.sum()), np.uint8), (rows[keep], columns[keep])), shape=shape
        )
        built.data[:] = 1  # an entry verified twice (two sources) counts once
        return built

    positives, negatives = matrix(present), matrix(~present)
    both = positives.multiply(negatives).tocoo()
    if both.nnz:
        pairs = [f"{images[i]}: {classes[j]!r}" for i, j in zip(both.row, both.col, strict=True)]
        if conflicts == "error":
            raise ValueError(
                f"{where}: {both.nnz} entries verified both present and absent: {shorten(pairs)}"
            )
        warnings.warn(
            f"{where}: {both.nnz} entries verified both present and absent are left unknown: "
            f"{shorten(pairs)}",
            stacklevel=3,
        )
        conflicting = both.tocsr()
        positives, negatives = (
            scipy.sparse.csr_array(matrix - matrix.multiply(conflicting))
            for matrix in (positives, negatives)
        )
        positives.eliminate_zeros()
        negatives.eliminate_zeros()
    labeled = (np.diff(positives.indptr) + np.diff(negatives.indptr)) > 0
    return TagsTable(images, positives, labeled, classes, negatives=negatives)


def _class_name(display: str, key: str, taken: dict[str, int]) -> str:
    """A valid, unique class name: the display name, else ``"name (key)"``, else ``key``."""
    name = display.strip()
    if not name or LABEL_SEPARATOR in name:
        return key
    return f"{name} ({key})" if taken.get(name, 0) > 1 else name


def _read_descriptions(path: PathLike) -> dict[str, str]:
    """Open Images class descriptions: MID -> display name (header optional)."""
    path = as_path(path)
    names: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, fields in enumerate(csv.reader(handle), start=1):
            if not fields or (line == 1 and fields[:2] == ["LabelName", "DisplayName"]):
                continue
            if len(fields) != 2:
                raise ValueError(
                    f"{path}: line {line}: expected 2 columns (LabelName,DisplayName), "
                    f"found {len(fields)}: {fields!r}"
                )
            names[fields[0].strip()] = fields[1]
    return names


def read_open_images_labels(
    labels_path: PathLike,
    descriptions_path: PathLike,
    classes: Sequence[str] | None = None,
    image_prefix: str = "",
    image_suffix: str = ".jpg",
    conflicts: Conflicts = "unknown",
) -> TagsTable:
    """Open Images' human-verified image-level labels as a tags table with negatives.

    Args:
        labels_path: ``*-annotations-human-imagelabels*.csv`` (header
            ``ImageID,Source,LabelName,Confidence``).
        descriptions_path: the class-descriptions file (MID, display name).
        classes: MIDs to keep, in column order (e.g. the trainable classes); labels of other
            classes are skipped. Default: every class the labels file verifies, in the
            descriptions file's order.
        image_prefix, image_suffix: image path = prefix + ImageID + suffix.
        conflicts: ``"unknown"`` or ``"error"`` (module docstring).

    Returns:
        a :class:`TagsTable` named by display names (``"name (MID)"`` where two MIDs share
        one); images in the order first met.

    Raises:
        ValueError: naming the file and line, for a wrong header, a confidence other than 0
            or 1 (a machine-generated labels file), or a MID the descriptions lack.
    """
    conflicts = check_choice(conflicts, ("unknown", "error"), "conflicts")
    labels_path = as_path(labels_path)
    names = _read_descriptions(descriptions_path)
    wanted = None if classes is None else {str(mid): j for j, mid in enumerate(classes)}
    if wanted is not None:
        unknown = [mid for mid in wanted if mid not in names]
        if unknown:
            raise ValueError(f"classes not in {descriptions_path}: {shorten(unknown)}")
    image_rows: dict[str, int] = {}
    columns: dict[str, int] = dict(wanted) if wanted is not None else {}
    entries = _Entries()
    with labels_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [field.strip() for field in next(reader, [])]
        if header != list(OPEN_IMAGES_COLUMNS):
            raise ValueError(
                f"{labels_path}: line 1: expected the header "
                f"'{','.join(OPEN_IMAGES_COLUMNS)}', found {','.join(header)!r}"
            )
        for fields in reader:
            if not fields:
                continue
            line = reader.line_num
            if len(fields) != 4:
                raise ValueError(f"{labels_path}: line {line}: expected 4 columns: {fields!r}")
            image, mid, confidence = fields[0].strip(), fields[2].strip(), fields[3].strip()
            if confidence not in ("0", "1", "0.0", "1.0"):
                raise ValueError(
                    f"{labels_path}: line {line}: confidence {confidence!r} is not 0 or 1; "
                    "only human-verified labels can be read (not machine-generated ones)"
                )
            if mid not in names:
                raise ValueError(f"{labels_path}: line {line}: {mid!r} is not a described class")
            if wanted is not None and mid not in wanted:
                continue
            column = columns.setdefault(mid, len(columns))
            row = image_rows.setdefault(image, len(image_rows))
            entries.add(row, column, confidence.startswith("1"))
    mids = list(columns) if wanted is not None else [m for m in names if m in columns]
    if wanted is None:  # descriptions order: renumber the columns met
        order = {mid: j for j, mid in enumerate(mids)}
        renumber = np.array([order[mid] for mid in columns], np.int32)
        entries.columns = array.array("i", renumber[np.frombuffer(entries.columns, np.int32)])
    displays = [names[mid].strip() for mid in mids]
    taken = {name: displays.count(name) for name in set(displays)}
    class_names = [_class_name(names[mid], mid, taken) for mid in mids]
    images = [f"{image_prefix}{image}{image_suffix}" for image in image_rows]
    return _table(images, class_names, entries, conflicts, str(labels_path))


def _lvis_image_path(image: dict) -> str:
    """``file_name`` where given, else the ``coco_url``'s path (``train2017/0001.jpg``)."""
    if image.get("file_name"):
        return str(image["file_name"])
    url = image.get("coco_url")
    if not url:
        raise ValueError(f"LVIS image {image.get('id')!r} has neither file_name nor coco_url")
    parts = PurePosixPath(urlparse(str(url)).path).parts
    return "/".join(parts[-2:])


def read_lvis_labels(path: PathLike, conflicts: Conflicts = "unknown") -> TagsTable:
    """An LVIS annotation file's image-level tags as a tags table with negatives.

    Args:
        path: ``lvis_v1_train.json`` or alike (keys ``images``, ``annotations``,
            ``categories``).
        conflicts: ``"unknown"`` or ``"error"`` (module docstring).

    Returns:
        a :class:`TagsTable` with one row per image (the file's order), one class per
        category (sorted by id, named by ``name``); positives = annotated or not exhaustively
        annotated categories, negatives = ``neg_category_ids``.
    """
    conflicts = check_choice(conflicts, ("unknown", "error"), "conflicts")
    path = as_path(path)
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{path}: not an LVIS annotation file (no {key!r})")
    categories = sorted(data["categories"], key=lambda category: category["id"])
    column = {category["id"]: j for j, category in enumerate(categories)}
    row = {image["id"]: i for i, image in enumerate(data["images"])}

    def where(image_id: object, category_id: object, what: str) -> tuple[int, int]:
        if image_id not in row:
            raise ValueError(f"{path}: {what} names image {image_id!r}, not in 'images'")
        if category_id not in column:
            raise ValueError(f"{path}: {what} names category {category_id!r}, not defined")
        return row[image_id], column[category_id]

    entries = _Entries()
    for annotation in data["annotations"]:
        entries.add(
            *where(annotation["image_id"], annotation["category_id"], "an annotation"), True
        )
    for image in data["images"]:
        for category_id in image.get("not_exhaustive_category_ids", []):
            entries.add(*where(image["id"], category_id, "not_exhaustive_category_ids"), True)
        for category_id in image.get("neg_category_ids", []):
            entries.add(*where(image["id"], category_id, "neg_category_ids"), False)
    images = [_lvis_image_path(image) for image in data["images"]]
    classes = [str(category["name"]) for category in categories]
    return _table(images, classes, entries, conflicts, str(path))
