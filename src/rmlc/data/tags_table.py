"""Tags tables: the plain-text format for users' multi-label image data (CSV or JSONL).

CSV: a header ``image,labels`` then one row per image; ``image`` is a path (relative to an
image root, or absolute) and ``labels`` the image's labels separated by ``|``
(``dog|person``). JSONL: one object per line with the same two fields,
``{"image": "a.jpg", "labels": ["dog", "person"]}`` (a ``"dog|person"`` string works too).

Tags verified absent (partial labels, as Open Images and LVIS give them): an optional third
column ``negatives`` (CSV header ``image,labels,negatives``; JSONL key ``"negatives"``, in
every record or in none), ``|``-separated like ``labels``. In a table with this column a
tag is *positive* (in ``labels``), *negative* (in ``negatives``) or *unknown* (in neither);
a tag listed in both is an error. Without it, every tag not in ``labels`` is negative (the
usual multi-label reading).

An empty ``labels`` field (``""``, ``[]`` or ``null``), and an empty ``negatives`` field
where the table has one, marks an *unlabeled* row (for semi-supervised training): its target
row is empty and ``labeled`` is False. Hence a labeled image needs at least one label (or,
in a table with negatives, one verified-absent tag). Classes are given, or inferred
(sorted) from the tags found. Blank lines are skipped and their numbers kept
(``blank_lines``), as is the line of each row (``lines``), so that a caller can account for
every line. Every
problem (missing or wrong header, unknown label, a tag both present and absent, duplicate
image, missing labels where they are required, bad JSON) is a ``ValueError`` naming the
file and the line(s).

Targets are kept sparse (a SciPy CSR matrix of the positive labels): a table of 200,000
images and 20,000 classes with a few labels each takes megabytes, not the 4 GB of a dense
uint8 matrix. ``table.targets.toarray()`` gives the dense matrix where it fits; so are the
verified negatives, and :meth:`TagsTable.known_mask` gives the known entries of a batch.
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

__all__ = [
    "NEGATIVES_COLUMN",
    "TAGS_COLUMNS",
    "TagsTable",
    "read_tags_table",
    "tags_table_format",
    "write_tags_table",
]

TAGS_COLUMNS = ("image", "labels")
NEGATIVES_COLUMN = "negatives"
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
        negatives: ``(N, m)`` uint8 CSR of the tags verified absent, or None for a table
            without a ``negatives`` column (every tag not positive is then negative). With
            it, an entry in neither ``targets`` nor ``negatives`` is unknown.
    """

    images: list[str]
    targets: scipy.sparse.csr_array
    labeled: np.ndarray
    classes: list[str]
    lines: np.ndarray | None = None
    blank_lines: list[int] = field(default_factory=list)
    negatives: scipy.sparse.csr_array | None = None

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
        if self.negatives is not None:
            self.negatives = _as_csr(self.negatives, (n, m), "negatives")
            has_negatives = np.diff(self.negatives.indptr) > 0
            if (has_negatives & ~labeled).any():
                rows = np.flatnonzero(~labeled & has_negatives)
                raise ValueError(f"unlabeled rows {shorten(rows)} have verified negatives")
            both = self.targets.multiply(self.negatives).tocoo()
            if both.nnz:
                entries = [
                    f"row {i}: {self.classes[j]!r}"
                    for i, j in zip(both.row.tolist(), both.col.tolist(), strict=True)
                ]
                raise ValueError(
                    f"{both.nnz} tags are both positive and verified absent: {shorten(entries)}"
                )
        if self.lines is not None:
            self.lines = np.asarray(self.lines, dtype=np.int64)
            if self.lines.shape != (n,):
                raise ValueError(f"lines must have shape ({n},), got {self.lines.shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def has_negatives(self) -> bool:
        """Whether the table lists verified negatives (its other tags are then unknown)."""
        return self.negatives is not None

    def labels_of(self, index: int) -> list[str]:
        """Class names of the positive labels of row ``index``."""
        return _names(self.targets, index, self.classes)

    def negatives_of(self, index: int) -> list[str]:
        """Class names of the tags of row ``index`` verified absent (``[]`` without them)."""
        return [] if self.negatives is None else _names(self.negatives, index, self.classes)

    def known_mask(self, rows: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """bool ``(len(rows), m)`` (all rows by default): the entries known to be present
        or absent, positives plus verified negatives; all True without a negatives column.
        Dense: ask for a batch of rows of a table with many classes."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.negatives is None:
            return np.ones((rows.size, len(self.classes)), dtype=bool)
        known = self.targets[rows] + self.negatives[rows]
        return known.toarray() > 0

    def known_fraction(self) -> np.ndarray:
        """float64 ``(m,)``: per class, the fraction of labeled rows where it is known."""
        labeled = int(self.labeled.sum())
        if self.negatives is None or labeled == 0:
            return np.full(len(self.classes), 1.0 if labeled else 0.0)
        counts = np.bincount(self.targets.indices, minlength=len(self.classes))
        counts = counts + np.bincount(self.negatives.indices, minlength=len(self.classes))
        return counts / labeled


def _names(matrix: scipy.sparse.csr_array, index: int, classes: list[str]) -> list[str]:
    start, stop = matrix.indptr[index], matrix.indptr[index + 1]
    return [classes[j] for j in matrix.indices[start:stop]]


def _as_csr(
    targets: object, shape: tuple[int, int], name: str = "targets"
) -> scipy.sparse.csr_array:
    """uint8 CSR matrix of the positives of dense 0/1 (or -1/+1) or sparse 0/1 targets."""
    found = tuple(getattr(targets, "shape", np.shape(targets)))
    if found != shape:
        raise ValueError(f"{name} must have shape {shape}, got {found}")
    return positives_csr(targets, name)


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


Row = tuple[int, str, list[str], list[str] | None]  # line, image, labels, negatives


@dataclass
class _Layout:
    """What a file's first line (CSV header, first JSONL record) said about its columns."""

    negatives: bool | None = None  # whether the table has a negatives column


def _csv_rows(path: Path, blank_lines: list[int], layout: _Layout) -> Iterable[Row]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file; expected the header 'image,labels'")
        names = [field.strip() for field in header]
        if names not in (list(TAGS_COLUMNS), [*TAGS_COLUMNS, NEGATIVES_COLUMN]):
            raise ValueError(
                f"{path}: line 1: expected the header 'image,labels', found {','.join(header)!r} "
                "(or 'image,labels,negatives' for a table with tags verified absent)"
            )
        layout.negatives = len(names) == 3
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                blank_lines.append(reader.line_num)
                continue
            if len(fields) != len(names):
                raise ValueError(
                    f"{path}: line {reader.line_num}: expected {len(names)} columns "
                    f"({','.join(names)}), found {len(fields)}: {fields!r}"
                )
            negatives = _split_labels(fields[2]) if layout.negatives else None
            yield reader.line_num, fields[0].strip(), _split_labels(fields[1]), negatives


def _json_labels(value: Any, path: Path, line: int, key: str = "labels") -> list[str]:
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
        f"{path}: line {line}: '{key}' must be a list of strings, a '|'-separated string "
        f"or null, got {value!r}"
    )


def _jsonl_rows(path: Path, blank_lines: list[int], layout: _Layout) -> Iterable[Row]:
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
            _check_record_keys(set(record), path, line, layout)
            image = record["image"]
            if not isinstance(image, str):
                raise ValueError(f"{path}: line {line}: 'image' must be a string, got {image!r}")
            labels = _json_labels(record["labels"], path, line)
            negatives = (
                _json_labels(record[NEGATIVES_COLUMN], path, line, NEGATIVES_COLUMN)
                if layout.negatives
                else None
            )
            yield line, image.strip(), labels, negatives


def _check_record_keys(keys: set[str], path: Path, line: int, layout: _Layout) -> None:
    """The fields 'image' and 'labels', and 'negatives' in every record or in none (the
    first record decides)."""
    if layout.negatives is None:
        layout.negatives = NEGATIVES_COLUMN in keys
    expected = {*TAGS_COLUMNS, NEGATIVES_COLUMN} if layout.negatives else set(TAGS_COLUMNS)
    if keys == expected:
        return
    missing, extra = sorted(expected - keys), sorted(keys - expected)
    if missing == [NEGATIVES_COLUMN] or extra == [NEGATIVES_COLUMN]:
        raise ValueError(
            f"{path}: line {line}: the first record "
            + ("has a" if layout.negatives else "has no")
            + " 'negatives' field and this one "
            + ("has none" if layout.negatives else "has one")
            + ": give 'negatives' in every record or in none"
        )
    raise ValueError(
        f"{path}: line {line}: expected the fields 'image' and 'labels'"
        + (" and 'negatives'" if layout.negatives else "")
        + (f"; missing {missing}" if missing else "")
        + (f"; unexpected {extra}" if extra else "")
    )


def read_tags_table(
    path: PathLike,
    classes: Sequence[str] | None = None,
    require_labels: bool = False,
    format: TableFormat | None = None,
) -> TagsTable:
    """Read a CSV or JSONL tags table (format described in the module docstring).

    Args:
        path: the ``.csv`` or ``.jsonl`` file.
        classes: the class list (column order); default: the sorted set of tags found
            (positives and verified negatives).
        require_labels: if True, rows without labels are an error.
        format: ``"csv"`` or ``"jsonl"`` (default: from the suffix).

    Returns:
        a :class:`TagsTable`; ``targets`` a uint8 CSR matrix ``(N, m)``, ``labeled`` bool
        ``(N,)``, ``lines`` int64 ``(N,)``, the skipped ``blank_lines`` and, for a table
        with a ``negatives`` column, ``negatives`` a uint8 CSR ``(N, m)``. Memory grows
        with the number of tags listed, not with ``N m``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file and line(s), for a missing/wrong header or fields, an
            unknown label (with ``classes`` given), a tag both in ``labels`` and in
            ``negatives``, duplicate images, empty image paths or unlabeled rows (with
            ``require_labels``).
    """
    path = as_path(path)
    kind = tags_table_format(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"tags table not found: {path}")
    if classes is not None:
        classes = [str(name) for name in classes]
        _check_classes(classes, f"classes given for {path}")
    blank_lines: list[int] = []
    layout = _Layout()
    rows = (_csv_rows if kind == "csv" else _jsonl_rows)(path, blank_lines, layout)
    collected = _collect(rows, path, classes)
    _check_unique_images(collected.images, collected.lines, path)
    labeled = np.frombuffer(collected.labeled, dtype=bool)
    if require_labels and not labeled.all():
        unlabeled_lines = np.frombuffer(collected.lines, dtype=np.int64)[~labeled]
        raise ValueError(
            f"{path}: {len(unlabeled_lines)} rows have no labels (labels are required): "
            f"lines {shorten(unlabeled_lines)}"
        )
    renumber = None
    if classes is None:  # columns were numbered as met: renumber them in sorted order
        classes = sorted(collected.columns)
        _check_classes(classes, str(path))
        place = {name: j for j, name in enumerate(classes)}
        renumber = np.empty(len(classes), np.int32)
        for name, j in collected.columns.items():
            renumber[j] = place[name]
    shape = (len(collected.images), len(classes))
    positives, negatives = collected.positives, collected.negatives
    targets = csr_of_tags(positives.indices, positives.indptr, shape, renumber)
    negatives = (
        csr_of_tags(negatives.indices, negatives.indptr, shape, renumber)
        if layout.negatives
        else None
    )
    lines = np.frombuffer(collected.lines, dtype=np.int64).copy()
    return TagsTable(
        collected.images, targets, labeled.copy(), list(classes), lines, blank_lines, negatives
    )


class _Tags:
    """One CSR matrix of tags, built row by row (int64 row pointers, int32 columns)."""

    def __init__(self) -> None:
        self.indptr = array.array("q", [0])
        self.indices = array.array("i")

    def end_row(self) -> None:
        self.indptr.append(len(self.indices))


def csr_of_tags(
    indices: array.array,
    indptr: array.array,
    shape: tuple[int, int],
    renumber: np.ndarray | None = None,
) -> scipy.sparse.csr_array:
    """uint8 CSR of tags gathered row by row (int32 columns, int64 row pointers), columns
    renumbered if asked, a tag listed twice in a row counted once."""
    columns = np.frombuffer(indices, dtype=np.int32)
    if renumber is not None:
        columns = renumber[columns]
    matrix = scipy.sparse.csr_array(
        (np.ones(len(columns), np.uint8), columns, np.frombuffer(indptr, np.int64)),
        shape=shape,
    )
    matrix.sum_duplicates()  # in place: sorted columns, a tag listed twice summed ...
    matrix.data[:] = 1  # ... and counted once
    return matrix


@dataclass
class _Collected:
    """A table's rows in compact form: Python objects for the image paths only."""

    images: list[str]
    lines: array.array  # int64 line of each row
    positives: _Tags
    negatives: _Tags  # stays empty for a table without a negatives column
    labeled: bytearray  # 1 for rows with labels
    columns: dict[str, int]  # tag -> column (numbered as met when classes are inferred)


def _collect(rows: Iterable[Row], path: Path, classes: list[str] | None) -> _Collected:
    """One pass over the rows, keeping per row its path, line, tags' columns and flag.

    Memory is about the paths' strings plus 25 bytes per row and 4 per tag: a table of
    9 million images is read in a few GB, not as 9 million tuples of lists of strings.
    """
    given = classes is not None
    columns = {name: j for j, name in enumerate(classes)} if given else {}
    collected = _Collected([], array.array("q"), _Tags(), _Tags(), bytearray(), columns)

    def column(label: str, line: int) -> int:
        j = columns.get(label)
        if j is None:
            if given:
                raise ValueError(
                    f"{path}: line {line} (row {len(collected.images) + 1}): unknown label "
                    f"{label!r}, not among the {len(columns)} given classes"
                )
            j = columns[label] = len(columns)
        return j

    for line, image, labels, negatives in rows:
        if not image:
            raise ValueError(f"{path}: line {line}: empty image path")
        # a tag listed twice is one entry (TagsTable merges them)
        collected.positives.indices.extend(column(label, line) for label in labels)
        if negatives:
            both = sorted(set(labels) & set(negatives))
            if both:
                raise ValueError(
                    f"{path}: line {line}: {', '.join(map(repr, both))} listed both in "
                    "labels and in negatives"
                )
            collected.negatives.indices.extend(column(label, line) for label in negatives)
        collected.positives.end_row()
        collected.negatives.end_row()
        collected.images.append(image)
        collected.lines.append(line)
        collected.labeled.append(1 if labels or negatives else 0)
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
    listed = np.diff(table.targets.indptr)
    if table.negatives is not None:
        listed = listed + np.diff(table.negatives.indptr)
    empty = np.flatnonzero(table.labeled & (listed == 0))
    if empty.size and not empty_as_unlabeled:
        what = (
            "no tag, positive or verified absent," if table.has_negatives else "no positive label"
        )
        raise ValueError(
            f"writing {path}: {empty.size} labeled rows have {what} and would read "
            f"back as unlabeled (rows {shorten(empty)}); pass empty_as_unlabeled=True"
        )
    columns = [*TAGS_COLUMNS, NEGATIVES_COLUMN] if table.has_negatives else list(TAGS_COLUMNS)
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    if kind == "csv":
        writer.writerow(columns)
    for i, image in enumerate(table.images):
        tags = [table.labels_of(i), table.negatives_of(i)][: len(columns) - 1]
        if kind == "csv":
            writer.writerow([image, *(LABEL_SEPARATOR.join(names) for names in tags)])
        else:
            handle.write(json.dumps(dict(zip(columns, [image, *tags], strict=True))) + "\n")
    atomic_write_text(handle.getvalue(), path)
    return path
