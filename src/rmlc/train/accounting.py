"""Every row accounted for, and a validation split that is said to be too small.

Before training, the run's log (``train.log``, and the terminal) gets one line per tags
table: its rows, how many train, validate, join the unlabeled pool or are tested, how many
were dropped and why, and the blank lines skipped; ``metrics.json`` records the same counts
under ``rows``. A training row with an empty labels field is what ``empty_labels`` says
(:func:`empty_label_rule`): an unlabeled image, left out, or an error naming its lines.
Duplicate image paths are always an error (:func:`rmlc.data.read_tags_table`), so no row is
ever dropped for one.

A validation split with fewer than :data:`MIN_VALIDATION_POSITIVES` positives of a class
cannot rank that class: :func:`validation_warning` names those classes and their counts,
once, in the run's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmlc.data._common import shorten
from rmlc.data.tags_table import TagsTable
from rmlc.train.config import TrainConfig
from rmlc.train.data import TrainingData
from rmlc.train.run_log import RunLog

__all__ = [
    "MIN_VALIDATION_POSITIVES",
    "TableRows",
    "announce",
    "check_empty_labels",
    "data_summary",
    "empty_label_rule",
    "small_validation_classes",
    "tags_table_rows",
    "validation_warning",
]

# Fewer positives of a class than this in the validation split: its average precision
# takes a handful of values (1/1, 1/2, 2/3 ...) and ranks epochs by chance.
MIN_VALIDATION_POSITIVES = 5
_CLASSES_NAMED = 10  # classes named in the warning before "and N more"


def empty_label_rule(config: TrainConfig) -> str:
    """What a training row with an empty labels field is: ``config.empty_labels``, or by
    default ``"unlabeled"`` in semi-supervised runs (they train on unlabeled images) and
    ``"error"`` in supervised ones (which would drop the row)."""
    if config.empty_labels is not None:
        return config.empty_labels
    return "unlabeled" if config.semi_supervised else "error"


def _where(table: TagsTable, rows: np.ndarray) -> str:
    """``"lines 3, 7"`` of a table read from a file, else ``"rows 2, 6"`` (0-based)."""
    if table.lines is not None:
        return f"line{'s' if len(rows) > 1 else ''} {shorten(table.lines[rows])}"
    return f"row{'s' if len(rows) > 1 else ''} {shorten(rows)}"


def check_empty_labels(table: TagsTable, path: str, rule: str) -> np.ndarray:
    """The rows of a training table with an empty labels field; with ``rule`` ``"error"``
    any such row is a ``ValueError`` naming its lines and the option."""
    empty = np.flatnonzero(~table.labeled)
    if rule == "error" and empty.size:
        one = empty.size == 1
        count = "1 row has" if one else f"{empty.size} rows have"
        them, images = ("it", "an unlabeled image") if one else ("them", "unlabeled images")
        raise ValueError(
            f"{path}: {count} an empty labels field ({_where(table, empty)}), and training "
            f"would drop {them}. Give {them} labels, or pass --empty-labels skip to leave "
            f"{them} out, or --empty-labels unlabeled to keep {them} as {images} (trained "
            "on with --semi-supervised); config key empty_labels"
        )
    return empty


@dataclass
class TableRows:
    """How the rows of one tags table were used.

    Attributes:
        role: ``"train"``, ``"unlabeled"`` or ``"test"`` (the config key naming the table).
        table: its path.
        rows: its rows (blank lines not counted).
        used: rows per use: ``training``, ``validation``, ``unlabeled``; or ``test``.
        dropped: rows left out, per reason (``empty_labels``, ``beyond_num_labeled``,
            ``unused_unlabeled``, ``unreadable_images``).
        blank_lines: the blank lines skipped.
        notes: per reason, how to read it (for the log line).
    """

    role: str
    table: str
    rows: int
    used: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)
    blank_lines: list[int] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.blank_lines = list(self.blank_lines)

    def drop(self, reason: str, count: int, note: str) -> None:
        """Record ``count`` rows left out for ``reason`` (nothing when 0)."""
        if count > 0:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            self.notes[reason] = note

    def to_dict(self) -> dict[str, Any]:
        """The counts, as ``metrics.json`` records them."""
        return {
            "table": self.table,
            "rows": self.rows,
            **self.used,
            "dropped": dict(self.dropped),
            "blank_lines": len(self.blank_lines),
        }

    def describe(self) -> str:
        """One line: every row of the table and what became of it."""
        used = ", ".join(f"{count} {use}" for use, count in self.used.items())
        dropped = sum(self.dropped.values())
        text = (
            f"rows of {self.table} ({self.role} table): {self.rows} rows: {used}, {dropped} dropped"
        )
        if dropped:
            text += (
                " ("
                + "; ".join(
                    f"{count} {self.notes[reason]}" for reason, count in self.dropped.items()
                )
                + ")"
            )
        if self.blank_lines:
            count = len(self.blank_lines)
            text += (
                f"; {count} blank line{'s' if count > 1 else ''} skipped "
                f"({_where_lines(self.blank_lines)})"
            )
        return text


def _where_lines(lines: list[int]) -> str:
    return f"line{'s' if len(lines) > 1 else ''} {shorten(lines)}"


def _count_below(rows: Any, limit: int) -> int:
    return int((np.asarray(rows) < limit).sum())


def tags_table_rows(
    data: TrainingData,
    config: TrainConfig,
    tables: Mapping[str, tuple[str, TagsTable]],
    dropped: Mapping[str, np.ndarray] | None = None,
) -> list[TableRows]:
    """The :class:`TableRows` of the tables a run read (``role -> (path, table)``: ``train``,
    optional ``unlabeled`` and ``test``), from the :class:`TrainingData` built from them:
    the training table's rows come first in the training store, then the unlabeled
    table's. ``dropped``: the rows (of the store) each decision of the protocol left out
    (:attr:`rmlc.train.protocol.Split.dropped`). Rows that neither explains were left out
    by ``bad_images``."""
    dropped = dropped or {}
    path, table = tables["train"]
    report = _training_table_rows(data, config, path, table, dropped)
    rows = [report]
    if "unlabeled" in tables:
        path, extra = tables["unlabeled"]
        start = len(table)
        in_pool = len(data.unlabeled) - report.used["unlabeled"]  # after the training table's
        report = TableRows(
            "unlabeled", path, len(extra), {"unlabeled": in_pool}, blank_lines=extra.blank_lines
        )
        if not config.semi_supervised:
            report.drop(
                "unused_unlabeled",
                len(extra),
                "unused: training is supervised (--semi-supervised trains on them)",
            )
        _drop_decided(report, dropped, (start, start + len(extra)), config)
        _drop_the_rest(report)
        rows.append(report)
    if "test" in tables:
        path, tested = tables["test"]
        used = {"test": len(data.test[0]) if data.test else 0}
        report = TableRows("test", path, len(tested), used, blank_lines=tested.blank_lines)
        _drop_the_rest(report)
        rows.append(report)
    return rows


# The protocol's decisions that leave rows of a table out (the rows a supervised run does
# not use are counted by reasons of their own: empty_labels, beyond_num_labeled).
_DECIDED = {
    "subsample": ("subsampled", "left out by --subsample {subsample}"),
    "max_unlabeled": ("beyond_max_unlabeled", "unlabeled beyond --max-unlabeled {max_unlabeled}"),
}


def _drop_decided(
    report: TableRows,
    dropped: Mapping[str, np.ndarray],
    rows: tuple[int, int],
    config: TrainConfig,
) -> None:
    """Count the rows ``start:stop`` of the store that the protocol's decisions left out."""
    start, stop = rows
    for decision, (reason, note) in _DECIDED.items():
        left_out = np.asarray(dropped.get(decision, ()))
        count = int(((left_out >= start) & (left_out < stop)).sum())
        settings = {"subsample": config.subsample, "max_unlabeled": config.max_unlabeled}
        report.drop(reason, count, note.format(**settings))


def _training_table_rows(
    data: TrainingData,
    config: TrainConfig,
    path: str,
    table: TagsTable,
    dropped: Mapping[str, np.ndarray],
) -> TableRows:
    """The training table's rows: trained on, validation, unlabeled pool, or dropped."""
    n, semi = len(table), config.semi_supervised
    pool = data.train.rows.numpy()
    validation = 0 if data.validation is None else _count_below(data.validation[0].rows, n)
    used = {
        "training": _count_below(pool[data.labeled.numpy()], n),
        "validation": validation,
        "unlabeled": _count_below(pool[data.unlabeled.numpy()], n),
    }
    report = TableRows("train", path, n, used, blank_lines=list(table.blank_lines))
    empty = np.flatnonzero(~table.labeled)
    if empty_label_rule(config) == "skip":
        why = f"with empty labels (--empty-labels skip): {_where(table, empty)}"
        report.drop("empty_labels", empty.size, why)
    elif not semi:
        why = "with empty labels, unlabeled images that supervised training does not use: "
        report.drop("empty_labels", empty.size, why + _where(table, empty))
    if config.num_labeled is not None and not semi:
        unused = np.asarray(dropped.get("supervised", ()), dtype=np.int64)
        beyond = int(table.labeled[unused[unused < n]].sum())  # labeled rows left unused
        report.drop(
            "beyond_num_labeled",
            beyond,
            f"labeled beyond --num-labeled {config.num_labeled}, unused by supervised training",
        )
    _drop_decided(report, dropped, (0, n), config)
    _drop_the_rest(report)
    return report


def _drop_the_rest(report: TableRows) -> None:
    """Rows neither used nor dropped for a reason of their own: unreadable image files."""
    rest = report.rows - sum(report.used.values()) - sum(report.dropped.values())
    report.drop("unreadable_images", rest, "with unreadable image files (--bad-images skip)")


def data_summary(data: TrainingData) -> dict[str, int]:
    """Images per use, for data that is not a tags table (built-in sets, arrays)."""
    return {
        "training": len(data.labeled),
        "validation": 0 if data.validation is None else len(data.validation[0]),
        "unlabeled": len(data.unlabeled),
        "test": 0 if data.test is None else len(data.test[0]),
    }


def small_validation_classes(
    data: TrainingData, minimum: int = MIN_VALIDATION_POSITIVES
) -> list[tuple[str, int]]:
    """``(class, positives)`` of the classes with fewer than ``minimum`` positives in the
    validation split (none without one)."""
    if data.validation is None:
        return []
    counts = data.validation[1].positives_per_class()
    return [
        (name, int(count))
        for name, count in zip(data.class_names, counts, strict=True)
        if count < minimum
    ]


def validation_warning(data: TrainingData, config: TrainConfig) -> str | None:
    """One line naming the classes the validation split is too small to rank, with their
    counts and what to do; None when every class has enough positives."""
    small = small_validation_classes(data)
    if not small:
        return None
    named = ", ".join(f"{name} {count}" for name, count in small[:_CLASSES_NAMED])
    if len(small) > _CLASSES_NAMED:
        named += f" and {len(small) - _CLASSES_NAMED} more"
    images = len(data.validation[0])
    text = (
        f"warning: the validation split ({images} images) is too small to rank classes: "
        f"{len(small)} of {len(data.class_names)} classes have fewer than "
        f"{MIN_VALIDATION_POSITIVES} positives in it ({named}), so its metrics are noise"
    )
    more = f"raise --validation-fraction (now {config.validation_fraction:g})"
    if config.select == "best":
        return (
            f"{text}, and so is the epoch kept in best.pt: {more}, or pass --select last "
            "to keep the last epoch"
        )
    return (
        f"{text} (best.pt is the last epoch: --select last): {more} for metrics that mean something"
    )


def announce(data: TrainingData, config: TrainConfig, log: RunLog) -> dict[str, Any]:
    """Write the rows of each table (or the images per use) and any validation warning to
    the run's log; returns the counts ``metrics.json`` records under ``rows``."""
    if data.rows is not None:
        for table in data.rows:
            log.message(table.describe())
        counts: dict[str, Any] = {table.role: table.to_dict() for table in data.rows}
    else:
        counts = data_summary(data)
        log.message("images: " + ", ".join(f"{count} {use}" for use, count in counts.items()))
    warning = validation_warning(data, config)
    if warning is not None:
        log.message(warning)
    return counts
