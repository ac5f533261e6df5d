"""Every row of every tags table accounted for, empty labels by rule, and a validation split
too small to rank classes said once in the run's log."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rmlc.train import build_trainer
from rmlc.train.accounting import (
    MIN_VALIDATION_POSITIVES,
    announce,
    empty_label_rule,
    small_validation_classes,
    validation_warning,
)
from rmlc.train.datasets import build_training_data
from rmlc.train.run_log import RunLog
from rmlc.train.targets import SparseTargets
from tests.train.conftest import tiny_config

EMPTIED = (2, 6)  # rows of the training table whose labels are removed


@pytest.fixture(scope="module")
def tables(mosaic_tables, tmp_path_factory) -> dict[str, Path]:
    """The mosaic tables, the training one with rows 2 and 6 unlabeled and a blank line
    after row 10 (lines: 1 header, rows 0-10 on 2-12, blank 13, rows 11-95 on 14-98)."""
    folder = tmp_path_factory.mktemp("accounting")
    header, *rows = mosaic_tables["train"].read_text().splitlines()
    for row in EMPTIED:
        rows[row] = rows[row].split(",")[0] + ","
    text = "\n".join([header, *rows[:11], "", *rows[11:]]) + "\n"
    (folder / "train.csv").write_text(text)
    return {**mosaic_tables, "train": folder / "train.csv"}


def rows_of(tables, tmp_path, **overrides) -> dict[str, dict]:
    data = build_training_data(tiny_config(tables, tmp_path / "run", **overrides))
    report = {table.role: table for table in data.rows}
    for table in report.values():  # every row is used or dropped, once
        assert table.rows == sum(table.used.values()) + sum(table.dropped.values())
    return report


def test_empty_labels_are_an_error_by_default_in_supervised_runs(tables, tmp_path) -> None:
    config = tiny_config(tables, tmp_path / "run")
    assert empty_label_rule(config) == "error"
    with pytest.raises(ValueError) as info:
        build_training_data(config)
    message = str(info.value)
    assert "train.csv: 2 rows have an empty labels field (lines 4, 8)" in message
    assert "--empty-labels skip" in message and "--empty-labels unlabeled" in message
    assert empty_label_rule(tiny_config(tables, tmp_path, semi_supervised=True)) == "unlabeled"


@pytest.mark.parametrize(
    ("rule", "semi", "unlabeled", "dropped"),
    [
        ("skip", False, 0, {"empty_labels": 2}),
        ("unlabeled", False, 0, {"empty_labels": 2}),  # what rmlc did before: silently
        (None, True, 2, {}),  # semi-supervised: unlabeled images, trained on
        ("skip", True, 0, {"empty_labels": 2}),
    ],
)
def test_each_training_row_is_used_or_dropped_for_a_reason(
    tables, tmp_path, rule, semi, unlabeled, dropped
) -> None:
    report = rows_of(tables, tmp_path, empty_labels=rule, semi_supervised=semi)["train"]
    assert report.rows == 96 and report.blank_lines == [13]
    assert report.used["validation"] == round(0.25 * 94)  # of the 94 labeled rows
    assert report.used["training"] == 94 - round(0.25 * 94)
    assert report.used["unlabeled"] == unlabeled and report.dropped == dropped
    text = report.describe()
    assert text.startswith(f"rows of {tables['train']} (train table): 96 rows: ")
    assert "1 blank line skipped (line 13)" in text
    if dropped:
        assert "2 with empty labels" in text and "lines 4, 8" in text


@pytest.mark.parametrize("semi", [False, True])
def test_unlabeled_table_and_num_labeled_are_counted(tables, tmp_path, semi) -> None:
    report = rows_of(
        tables,
        tmp_path,
        empty_labels="skip",
        semi_supervised=semi,
        num_labeled=50,
        unlabeled=str(tables["unlabeled"]),
    )
    train, extra, test = report["train"], report["unlabeled"], report["test"]
    assert train.used["training"] + train.used["validation"] == 50
    assert train.used["unlabeled"] == (44 if semi else 0)  # 94 labeled, 50 kept labeled
    assert train.dropped == {"empty_labels": 2} | ({} if semi else {"beyond_num_labeled": 44})
    assert extra.rows == 64 and extra.used == {"unlabeled": 64 if semi else 0}
    assert extra.dropped == ({} if semi else {"unused_unlabeled": 64})
    assert test.rows == 48 and test.used == {"test": 48} and test.dropped == {}


def test_unreadable_images_skipped_are_counted_per_table(tables, tmp_path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tables["root"] / "images", folder / "images")
    (folder / "images" / "train-0005.png").unlink()
    (folder / "images" / "test-0001.png").write_bytes(b"junk")
    copies = {**tables, "root": folder}
    with pytest.warns(UserWarning, match="skipped: 2 of"):
        report = rows_of(copies, tmp_path, empty_labels="skip", bad_images="skip")
    assert report["train"].dropped == {"empty_labels": 2, "unreadable_images": 1}
    assert report["test"].dropped == {"unreadable_images": 1}
    assert report["test"].used == {"test": 47}
    assert "1 with unreadable image files (--bad-images skip)" in report["test"].describe()


def literal_small_classes(data) -> list[tuple[str, int]]:
    """Classes with fewer than 5 validation positives, counted one row at a time."""
    view, targets = data.validation
    counts = [0] * len(data.class_names)
    for position in range(len(view)):
        for j, value in enumerate(targets[[position]][0].tolist()):
            counts[j] += int(value > 0)
    return [(name, c) for name, c in zip(data.class_names, counts, strict=True) if c < 5]


@pytest.mark.parametrize("select", ["best", "last"])
def test_a_small_validation_split_is_said_once_in_the_log(tables, tmp_path, select) -> None:
    config = tiny_config(
        tables, tmp_path / "run", empty_labels="skip", validation_fraction=0.05, select=select
    )
    data = build_training_data(config)
    small = small_validation_classes(data)
    assert small == literal_small_classes(data) and len(small) > 0
    assert MIN_VALIDATION_POSITIVES == 5
    log = RunLog(tmp_path / "run", tensorboard=False, echo=False, enabled=True)
    (tmp_path / "run").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # through the log, not a Python warning
        counts = announce(data, config, log)
    lines = (tmp_path / "run" / "train.log").read_text().splitlines()
    warned = [line for line in lines if line.startswith("warning: the validation split")]
    assert len(warned) == 1 and warned[0] == validation_warning(data, config)
    assert f"the validation split ({len(data.validation[0])} images)" in warned[0]
    assert ", ".join(f"{name} {count}" for name, count in small) in warned[0]
    assert "--validation-fraction (now 0.05)" in warned[0]
    assert ("--select last to keep the last epoch" in warned[0]) == (select == "best")
    assert counts["train"]["dropped"] == {"empty_labels": 2}
    assert lines[0] == data.rows[0].describe()


def test_a_large_enough_validation_split_is_not_flagged(tables, tmp_path) -> None:
    config = tiny_config(tables, tmp_path / "run", empty_labels="skip", validation_fraction=0.8)
    data = build_training_data(config)
    assert small_validation_classes(data) == literal_small_classes(data) == []
    assert validation_warning(data, config) is None


def test_accuracy_is_reported_for_single_label_data_only(tables, tmp_path) -> None:
    """A split whose rows each hold one label is still multi-label data: no accuracy."""
    trainer = build_trainer(tiny_config(tables, tmp_path / "run", empty_labels="skip"))
    assert not trainer.data.single_label
    view, targets = trainer.data.validation
    one_label = torch.zeros(targets.shape)
    one_label[torch.arange(len(view)), torch.arange(len(view)) % targets.shape[1]] = 1
    split = (view, SparseTargets(one_label.numpy().astype(np.float32)))
    assert "accuracy" not in trainer.evaluate(split) and "mAP" in trainer.evaluate(split)
    trainer.data.single_label = True
    assert "accuracy" in trainer.evaluate(split)
