"""Tags tables: the plain-text format for users' multi-label image data (CSV or JSONL).

CSV: a header ``image,labels`` then one row per image; ``image`` is a path (relative to an
image root, or absolute) and ``labels`` the image's labels separated by ``|``
(``dog|person``). JSONL: one object per line with the same two fields,
``{"image": "a.jpg", "labels": ["dog", "person"]}`` (a ``"dog|person"`` string works too).

An empty ``labels`` field (``""``, ``[]`` or ``null``) marks an *unlabeled* row (for
semi-supervised training): its target row is empty and ``labeled`` is False. Hence a
labeled image needs at least one label. Classes are given, or inferred (sorted) from the
labels found. Blank lines are skipped and their numbers kept (``blank_lines``), as is
the line of each row (``lines``), so that a caller can account for every line. Every
problem (missing or wrong header, unknown label, duplicate image, missing labels where they
are required, bad JSON) is a ``ValueError`` naming the file and the line(s).

Targets are kept sparse (a SciPy CSR matrix of the positive labels): a table of 200,000
images and 20,000 classes with a few labels each takes megabytes, not the 4 GB of a dense
uint8 matrix. ``table.targets.toarray()`` gives the dense matrix where it fits.
"""

from __future__ import annotations

import array
import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse

from rmlc.atomic import atomic_write_text
from rmlc.checks import check_choice
from rmlc.data._common import PathLike, as_path, shorten
from rmlc.labels import positives_csr

__all__ = ["TAGS_COLUMNS", "TagsTable", "read_tags_table", "tags_table_format", "write_tags_table"]

TAGS_COLUMNS = ("image", "labels")
LABEL_SEPARATOR = "|"
TableFormat = Literal["csv", "jsonl"]


@dataclass
class TagsTable:
    """Images with multi-label targets; rows may be unlabeled.

    Attributes:
        images: ``N`` image paths as written in the table.
        targets: ``(N, m)`` multi-hot targets, a uint8 ``scipy.sparse.csr_array`` whose
            stored entries are the positives (none for unlabeled rows); a dense 0/1 array
            is accepted and converted.
        labeled: bool ``(N,)``, False for unlabeled rows.
        classes: the ``m`` class names, in column order.
        lines: int64 ``(N,)``, the line of the file each row was read from (None when the
            table was not read from a file).
        blank_lines: the lines of the file that were blank and skipped.
    """

    images: list[str]
    targets: scipy.sparse.csr_array
    labeled: np.ndarray
    classes: list[str]
    lines: np.ndarray | None = None
    blank_lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = [str(image) for image in self.images]
        self.classes = [str(name) for name in self.classes]
        _check_classes(self.classes, "classes")
        n, m = len(self.images), len(self.classes)
        self.targets = _as_csr(self.targets, (n, m))
        labeled = np.asarray(self.labeled)
        if labeled.shape != (n,) or labeled.dtype != bool:
            raise ValueError(f"labeled must be a bool array of shape ({n},), got {labeled.shape}")
        self.labeled = labeled
        has_labels = np.diff(self.targets.indptr) > 0
        if (has_labels & ~labeled).any():
            rows = np.flatnonzero(~labeled & has_labels)
            raise ValueError(f"unlabeled rows {shorten(rows)} have positive targets")
        if self.lines is not None:
            self.lines = np.asarray(self.lines, dtype=np.int64)
            if self.lines.shape != (n,):
                raise ValueError(f"lines must have shape ({n},), got {self.lines.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def labels_of(self, index: int) -> list[str]:
        """Class names of the positive labels of row ``index``."""
        start, stop = self.targets.indptr[index], self.targets.indptr[index + 1]
        return [self.classes[j] for j in self.targets.indices[start:stop]]


def _as_csr(targets: object, shape: tuple[int, int]) -> scipy.sparse.csr_array:
    """uint8 CSR matrix of the positives of dense 0/1 (or -1/+1) or sparse 0/1 targets."""
    found = tuple(getattr(targets, "shape", np.shape(targets)))
    if found != shape:
        raise ValueError(f"targets must have shape {shape}, got {found}")
    return positives_csr(targets, "targets")


def _check_classes(classes: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for name in classes:
        if not name or name != name.strip() or LABEL_SEPARATOR in name:
            raise ValueError(
                f"{where}: bad class name {name!r} (non-empty, no surrounding spaces, no "
                f"'{LABEL_SEPARATOR}')"
            )
        if name in seen:
            raise ValueError(f"{where}: duplicate class name {name!r}")
        seen.add(name)


def tags_table_format(path: PathLike, format: TableFormat | None = None) -> TableFormat:
    """``"csv"`` or ``"jsonl"``: ``format`` if given, else from the file's suffix."""
    if format is not None:
        return check_choice(format, ("csv", "jsonl"), "format")
    suffix = as_path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ValueError(f"{path}: unknown tags table format {suffix!r} (use .csv or .jsonl)")


def _split_labels(text: str) -> list[str]:
    return [token.strip() for token in text.split(LABEL_SEPARATOR) if token.strip()]


def _csv_rows(path: Path, blank_lines: list[int]) -> Iterable[tuple[int, str, list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file; expected the header 'image,labels'")
        if [field.strip() for field in header] != list(TAGS_COLUMNS):
            raise ValueError(
                f"{path}: line 1: expected the header 'image,labels', found {','.join(header)!r}"
            )
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                blank_lines.append(reader.line_num)
                continue
            if len(fields) != 2:
                raise ValueError(
                    f"{path}: line {reader.line_num}: expected 2 columns (image,labels), "
                    f"found {len(fields)}: {fields!r}"
                )
            yield reader.line_num, fields[0].strip(), _split_labels(fields[1])


def _json_labels(value: Any, path: Path, line: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return _split_labels(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        labels = [item.strip() for item in value if item.strip()]
        bad = [label for label in labels if LABEL_SEPARATOR in label]
        if bad:
            raise ValueError(f"{path}: line {line}: label {bad[0]!r} contains '|'")
        return labels
    raise ValueError(
        f"{path}: line {line}: 'labels' must be a list of strings, a '|'-separated string "
        f"or null, got {value!r}"
    )


def _jsonl_rows(path: Path, blank_lines: list[int]) -> Iterable[tuple[int, str, list[str]]]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                blank_lines.append(line)
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {line}: invalid JSON ({error})") from error
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {line}: expected a JSON object, got {text!r}")
            keys = set(record)
            if keys != set(TAGS_COLUMNS):
                missing = sorted(set(TAGS_COLUMNS) - keys)
                extra = sorted(keys - set(TAGS_COLUMNS))
                raise ValueError(
                    f"{path}: line {line}: expected the fields 'image' and 'labels'"
                    + (f"; missing {missing}" if missing else "")
                    + (f"; unexpected {extra}" if extra else "")
                )
            image = record["image"]
            if not isinstance(image, str):
                raise ValueError(f"{path}: line {line}: 'image' must be a string, got {image!r}")
            yield line, image.strip(), _json_labels(record["labels"], path, line)


def read_tags_table(
    path: PathLike,
    classes: Sequence[str] | None = None,
    require_labels: bool = False,
    format: TableFormat | None = None,
) -> TagsTable:
    """Read a CSV or JSONL tags table (format described in the module docstring).

    Args:
        path: the ``.csv`` or ``.jsonl`` file.
        classes: the class list (column order); default: the sorted set of labels found.
        require_labels: if True, rows without labels are an error.
        format: ``"csv"`` or ``"jsonl"`` (default: from the suffix).

    Returns:
        a :class:`TagsTable`; ``targets`` a uint8 CSR matrix ``(N, m)``, ``labeled`` bool
        ``(N,)``, ``lines`` int64 ``(N,)`` and the skipped ``blank_lines``. Memory grows
        with the number of labels listed, not with ``N m``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file and line(s), for a missing/wrong header or fields, an
            unknown label (with ``classes`` given), duplicate images, empty image paths or
            unlabeled rows (with ``require_labels``).
    """
    path = as_path(path)
    kind = tags_table_format(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"tags table not found: {path}")
    if classes is not None:
        classes = [str(name) for name in classes]
        _check_classes(classes, f"classes given for {path}")
    blank_lines: list[int] = []
    rows = (_csv_rows if kind == "csv" else _jsonl_rows)(path, blank_lines)
    collected = _collect(rows, path, classes)
    _check_unique_images(collected.images, collected.lines, path)
    labeled = np.frombuffer(collected.labeled, dtype=bool)
    if require_labels and not labeled.all():
        unlabeled_lines = np.frombuffer(collected.lines, dtype=np.int64)[~labeled]
        raise ValueError(
            f"{path}: {len(unlabeled_lines)} rows have no labels (labels are required): "
            f"lines {shorten(unlabeled_lines)}"
        )
    indices = np.frombuffer(collected.indices, dtype=np.int32)
    if classes is None:  # columns were numbered as met: renumber them in sorted order
        classes = sorted(collected.columns)
        _check_classes(classes, str(path))
        place = {name: j for j, name in enumerate(classes)}
        renumber = np.empty(len(classes), np.int32)
        for name, j in collected.columns.items():
            renumber[j] = place[name]
        indices = renumber[indices]
    targets = scipy.sparse.csr_array(
        (np.ones(len(indices), np.uint8), indices, np.frombuffer(collected.indptr, np.int64)),
        shape=(len(collected.images), len(classes)),
    )
    targets.sum_duplicates()  # in place: sorted columns, a label listed twice summed ...
    targets.data[:] = 1  # ... and counted once
    lines = np.frombuffer(collected.lines, dtype=np.int64).copy()
    return TagsTable(collected.images, targets, labeled.copy(), list(classes), lines, blank_lines)


@dataclass
class _Collected:
    """A table's rows in compact form: Python objects for the image paths only."""

    images: list[str]
    lines: array.array  # int64 line of each row
    indptr: array.array  # int64, CSR row pointers
    indices: array.array  # int32 column of each label listed
    labeled: bytearray  # 1 for rows with labels
    columns: dict[str, int]  # label -> column (numbered as met when classes are inferred)


def _collect(
    rows: Iterable[tuple[int, str, list[str]]], path: Path, classes: list[str] | None
) -> _Collected:
    """One pass over the rows, keeping per row its path, line, labels' columns and flag.

    Memory is about the paths' strings plus 17 bytes per row and 4 per label: a table of
    9 million images is read in a few GB, not as 9 million tuples of lists of strings.
    """
    given = classes is not None
    columns = {name: j for j, name in enumerate(classes)} if given else {}
    collected = _Collected(
        [], array.array("q"), array.array("q", [0]), array.array("i"), bytearray(), columns
    )
    for line, image, labels in rows:
        if not image:
            raise ValueError(f"{path}: line {line}: empty image path")
        for label in labels:  # a label listed twice is one positive (TagsTable merges them)
            j = columns.get(label)
            if j is None:
                if given:
                    raise ValueError(
                        f"{path}: line {line} (row {len(collected.images) + 1}): unknown label "
                        f"{label!r}, not among the {len(columns)} given classes"
                    )
                j = columns[label] = len(columns)
            collected.indices.append(j)
        collected.images.append(image)
        collected.lines.append(line)
        collected.indptr.append(len(collected.indices))
        collected.labeled.append(1 if labels else 0)
    return collected


def _check_unique_images(images: list[str], lines: array.array, path: Path) -> None:
    """Refuse a table listing an image twice, naming both lines of each repeat. Rows whose
    paths share a 64-bit hash are compared as strings; no set of all paths is built."""
    hashes = np.fromiter((hash(image) for image in images), np.int64, len(images))
    order = np.argsort(hashes, kind="stable")
    same = hashes[order][1:] == hashes[order][:-1]
    candidates = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
    first_line: dict[str, int] = {}
    duplicates = []
    for row in candidates.tolist():  # in the table's order
        image, line = images[row], lines[row]
        if image in first_line:
            duplicates.append(f"{image!r} at lines {first_line[image]} and {line}")
        else:
            first_line[image] = line
    if duplicates:
        raise ValueError(f"{path}: {len(duplicates)} duplicate image rows: {shorten(duplicates)}")


def write_tags_table(
    path: PathLike,
    table: TagsTable,
    format: TableFormat | None = None,
    empty_as_unlabeled: bool = False,
) -> Path:
    """Write ``table`` as CSV or JSONL (format by suffix unless given).

    Args:
        path: destination ``.csv`` or ``.jsonl`` file.
        table: the table; unlabeled rows are written with empty labels.
        format: ``"csv"`` or ``"jsonl"``.
        empty_as_unlabeled: a labeled row without any positive label cannot be written
            (it would read back as unlabeled); if True such rows are written as unlabeled,
            else they are an error.

    Returns:
        the path written.
    """
    path = as_path(path)
    kind = tags_table_format(path, format)
    if not isinstance(table, TagsTable):
        raise TypeError(f"table must be a TagsTable, got {type(table).__name__}")
    empty = np.flatnonzero(table.labeled & (np.diff(table.targets.indptr) == 0))
    if empty.size and not empty_as_unlabeled:
        raise ValueError(
            f"writing {path}: {empty.size} labeled rows have no positive label and would read "
            f"back as unlabeled (rows {shorten(empty)}); pass empty_as_unlabeled=True"
        )
    labels = [table.labels_of(i) for i in range(len(table))]
    handle = io.StringIO()
    if kind == "csv":
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TAGS_COLUMNS)
        for image, names in zip(table.images, labels, strict=True):
            writer.writerow([image, LABEL_SEPARATOR.join(names)])
    else:
        for image, names in zip(table.images, labels, strict=True):
            handle.write(json.dumps({"image": image, "labels": names}) + "\n")
    atomic_write_text(handle.getvalue(), path)
    return path
