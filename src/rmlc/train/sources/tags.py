"""Users' data: tags tables or shard folders (``train``, optional ``unlabeled`` and ``test``).

Image paths of tables start at ``image_root``, by default the folder of the table (of the
test table when training from shards): :func:`table_images` is the one place that
resolves them, for training, ``rmlc evaluate``/``predict`` and ``rmlc audit`` alike. A
training row with an empty labels field is what ``empty_labels`` says
(:func:`rmlc.train.accounting.empty_label_rule`): one of the source's unlabeled rows, left
out, or an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse

from rmlc import data as datasets
from rmlc.data.shards import ShardSet
from rmlc.data.tags_table import TagsTable
from rmlc.train.accounting import check_empty_labels, empty_label_rule
from rmlc.train.config import TrainConfig
from rmlc.train.sources._common import require
from rmlc.train.sources.registry import SourceEntry, SourceRows

__all__ = ["ENTRY", "read", "read_tags", "table_images"]


def read_tags(
    path: str, classes: list[str] | None = None, require_labels: bool = False
) -> tuple[TagsTable, ShardSet | None]:
    """A tags table, or a shard folder's samples (and the shards)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} not found (a tags table or a shard folder)")
    if datasets.is_shard_folder(path):
        shards = datasets.read_shards(path, classes=classes, require_labels=require_labels)
        return shards.table, shards
    return datasets.read_tags_table(path, classes=classes, require_labels=require_labels), None


def table_images(
    table: TagsTable, shards: ShardSet | None, root: str | Path | None, table_path: str | Path
) -> list[Path] | ShardSet:
    """The images of a table read by :func:`read_tags`: its shards, or its paths under
    ``root`` (by default the table's folder)."""
    if shards is not None:
        return shards
    folder = Path(root or Path(table_path).parent)
    return [folder / image for image in table.images]


def read(config: TrainConfig) -> SourceRows:
    """The training table's rows, then the ``unlabeled`` table's (the source's unlabeled
    rows, with the training rows whose labels field is empty when ``empty_labels`` makes
    them unlabeled), and the ``test`` table (labels required)."""
    train_path = require(config.train, "--train (a tags table or a shard folder)", "tags")
    train, shards = read_tags(train_path)
    if config.unlabeled and datasets.is_shard_folder(config.unlabeled) != (shards is not None):
        raise ValueError(
            f"--unlabeled {config.unlabeled} and --train {train_path} must be of one kind: "
            "both tags tables or both shard folders"
        )
    if len(train.images) == 0:
        raise ValueError(f"{train_path} has no rows: nothing to train on")
    if not train.labeled.any():
        raise ValueError(
            f"{train_path}: no row has labels; at least one labeled image is needed "
            "(rows with an empty labels column are unlabeled)"
        )
    rule = empty_label_rule(config)
    empty = check_empty_labels(train, train_path, rule)
    classes = list(train.classes)
    paths_from = train_path if shards is None else (config.test or train_path)
    root = Path(config.image_root or Path(paths_from).parent)
    rows = SourceRows(
        images=table_images(train, shards, root, train_path),
        targets=train.targets,
        classes=classes,
        labeled=np.flatnonzero(train.labeled),
        unlabeled=empty if rule == "unlabeled" else empty[:0],
        tables={"train": (train_path, train)},
        negatives=train.negatives,
    )
    if config.unlabeled:
        _join_unlabeled(rows, config.unlabeled, root)
    if config.test:
        table, test_shards = read_tags(config.test, classes=classes, require_labels=True)
        rows.test = (table_images(table, test_shards, root, config.test), table.targets)
        rows.test_negatives = table.negatives
        rows.tables["test"] = (str(config.test), table)
    return rows


def _join_unlabeled(rows: SourceRows, path: str, root: str | Path) -> None:
    """Append the ``unlabeled`` table's rows to the pool as unlabeled rows (targets stay
    sparse: densified one batch at a time in training)."""
    extra, extra_shards = read_tags(path, classes=rows.classes)
    offset = len(rows)
    if isinstance(rows.images, ShardSet):
        rows.images = rows.images.joined(extra_shards)
    else:
        rows.images = rows.images + table_images(extra, None, root, path)
    none = scipy.sparse.csr_array((len(extra), len(rows.classes)), dtype=np.uint8)
    rows.targets = scipy.sparse.vstack([rows.targets, none], format="csr")
    if rows.negatives is not None:  # nothing of an unlabeled image is known
        rows.negatives = scipy.sparse.vstack([rows.negatives, none], format="csr")
    rows.unlabeled = np.concatenate([rows.unlabeled, offset + np.arange(len(extra))])
    rows.tables["unlabeled"] = (str(path), extra)


ENTRY = SourceEntry(
    "tags",
    read,
    "tags tables or shard folders: --train, --unlabeled, --test, --image-root",
    keys=("train", "test", "unlabeled", "image_root", "empty_labels"),
)
