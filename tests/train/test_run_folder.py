"""One run per folder: a second run into a run folder is refused, or replaces the first
whole (``overwrite``); ``resume`` continues it; nothing but rmlc's run files is removed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rmlc.train import TrainConfig, fit, run
from rmlc.train.checkpoint import load_checkpoint
from rmlc.train.run_folder import RUN_FILES, RunFolderError, prepare_run_folder, run_files
from tests.train.conftest import tiny_config


def fake_run(folder: Path) -> None:
    """Every file and folder a run writes, plus files of the user's own."""
    folder.mkdir(parents=True)
    for name in RUN_FILES:
        (folder / name).write_text(f"old {name}")
    (folder / "tensorboard").mkdir()
    (folder / "tensorboard" / "events").write_text("old")
    (folder / "notes.txt").write_text("mine")
    (folder / "images").mkdir()
    (folder / "images" / "a.png").write_text("mine")


def test_a_folder_holding_a_run_is_refused_naming_its_files(tmp_path) -> None:
    fake_run(tmp_path / "run")
    with pytest.raises(RunFolderError) as info:
        prepare_run_folder(TrainConfig(out=str(tmp_path / "run")))
    message = str(info.value)
    for name in (*RUN_FILES, "tensorboard/"):
        assert name in message
    assert "--resume" in message and "--overwrite" in message and "overwrite=True" in message
    assert "notes.txt" not in message
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == sorted(
        [*RUN_FILES, "tensorboard", "notes.txt", "images"]
    )  # nothing removed


def test_overwrite_removes_only_the_run_files(tmp_path) -> None:
    fake_run(tmp_path / "run")
    config = TrainConfig(out=str(tmp_path / "run"), overwrite=True)
    assert prepare_run_folder(config, main=False) == [*RUN_FILES, "tensorboard/"]
    assert len(run_files(tmp_path / "run")) == len(RUN_FILES) + 1  # another process: kept
    assert prepare_run_folder(config) == [*RUN_FILES, "tensorboard/"]
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["images", "notes.txt"]
    assert (tmp_path / "run" / "images" / "a.png").read_text() == "mine"


def test_resume_and_fresh_folders_pass_untouched(tmp_path) -> None:
    fake_run(tmp_path / "run")
    assert prepare_run_folder(TrainConfig(out=str(tmp_path / "run"), resume=True)) == []
    assert len(run_files(tmp_path / "run")) == len(RUN_FILES) + 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")  # only the user's files: a new run
    assert prepare_run_folder(TrainConfig(out=str(tmp_path / "mine"))) == []
    assert prepare_run_folder(TrainConfig(out=str(tmp_path / "absent"))) == []
    with pytest.raises(ValueError, match="resume .* overwrite .*not both"):
        TrainConfig(resume=True, overwrite=True)


def log_epochs(folder: Path) -> list[int]:
    return [int(row["epoch"]) for row in csv.DictReader((folder / "log.csv").open())]


def test_two_runs_into_one_folder_never_mix_their_logs(mosaic_tables, tmp_path) -> None:
    """The second run is refused before it reads anything; with overwrite, log.csv and
    train.log hold the second run alone, and select="last" keeps its last epoch."""
    out = tmp_path / "run"
    run(tiny_config(mosaic_tables, out, epochs=1))
    first = (out / "log.csv").read_text()
    assert log_epochs(out) == [1]
    with pytest.raises(RunFolderError, match="already holds a run"):
        run(tiny_config(mosaic_tables, out, epochs=2))
    assert (out / "log.csv").read_text() == first
    (out / "notes.txt").write_text("mine")
    metrics = run(tiny_config(mosaic_tables, out, epochs=2, overwrite=True, select="last"))
    assert log_epochs(out) == [1, 2]  # mixed, it would read 1, 1, 2
    log = (out / "train.log").read_text().splitlines()
    assert log[0].startswith("overwrite: removed the earlier run's config.yaml, log.csv")
    assert sum(line.startswith("epoch ") for line in log) == 2
    assert (out / "notes.txt").read_text() == "mine"
    assert metrics["best_epoch"] == 2 and metrics["select"] == "last"
    best, last = load_checkpoint(out / "best.pt"), load_checkpoint(out / "last.pt")
    for name, value in last["model"].items():
        torch.testing.assert_close(best["model"][name], value, rtol=0, atol=0)
    written = json.loads((out / "metrics.json").read_text())
    assert written["rows"]["train"]["rows"] == 96 and written["select"] == "last"


def test_fit_refuses_a_run_folder_before_training(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.pt").write_bytes(b"an earlier run's")
    images = np.zeros((8, 1, 8, 8), dtype=np.uint8)
    with pytest.raises(RunFolderError, match=r"best\.pt.*--overwrite"):
        fit(images, np.eye(8, 2), out=str(out), epochs=1, progress=False, tensorboard=False)
    assert (out / "best.pt").read_bytes() == b"an earlier run's"
    assert run_files(out) == ["best.pt"]
