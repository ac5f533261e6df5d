"""Files from elsewhere never run code when opened: checkpoints, weights and model files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from rmlc.models import build_model, load_backbone_weights
from rmlc.train.checkpoint import CheckpointError, load_checkpoint
from tests.commands import run_rmlc


class _RunsCode:
    """Unpickling this object creates a marker file: what a hostile checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def hostile(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.pt"
    torch.save({"model": {"w": torch.ones(2)}, "payload": _RunsCode(str(marker))}, path)
    return path, marker


def test_load_checkpoint_refuses_a_file_that_would_run_code(hostile) -> None:
    path, marker = hostile
    with pytest.raises(CheckpointError, match="does not unpickle them"):
        load_checkpoint(path)
    assert not marker.exists()


def test_weights_files_are_read_without_running_code(hostile) -> None:
    path, marker = hostile
    model = build_model("small-cnn", num_classes=3, in_channels=1, width=4)
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_backbone_weights(model, path)
    assert not marker.exists()


@pytest.mark.slow  # a fresh rmlc process per command
@pytest.mark.parametrize(
    "arguments",
    [
        ["predict", "--checkpoint", "{path}", "--images", "{folder}", "--out", "{folder}/o.csv"],
        ["evaluate", "--checkpoint", "{path}", "--dataset", "fashion-mosaic"],
        ["train", "--weights", "{path}", "--epochs", "1", "--out", "{folder}/run"],
        ["train", "--init-checkpoint", "{path}", "--epochs", "1", "--out", "{folder}/run2"],
    ],
    ids=["predict", "evaluate", "train-weights", "train-init-checkpoint"],
)
def test_every_command_refuses_it_with_a_clear_error(hostile, arguments) -> None:
    path, marker = hostile
    filled = [a.format(path=path, folder=path.parent) for a in arguments]
    result = subprocess.run(
        [sys.executable, "-m", "rmlc", *filled, "--no-progress"]
        if filled[0] == "train"
        else [sys.executable, "-m", "rmlc", *filled],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 2, result.stderr
    assert "does not unpickle them" in result.stderr
    assert not marker.exists()


def test_a_trainer_checkpoint_still_loads(tmp_path) -> None:
    path = tmp_path / "ok.pt"
    torch.save({"model": {"w": torch.ones(2)}, "history": [{"epoch": 1, "loss": 0.5}]}, path)
    assert load_checkpoint(path)["history"][0]["loss"] == 0.5


@pytest.mark.slow  # a fresh rmlc process
def test_predict_refuses_a_pickle_model_file(tmp_path) -> None:
    """``rmlc predict --model`` reads only the .npz format unless told ``--trusted``."""
    import joblib
    import numpy as np

    marker = tmp_path / "code-ran"
    model = tmp_path / "model.joblib"
    joblib.dump(_RunsCode(str(marker)), model)
    features = tmp_path / "f.npz"
    np.savez(features, X=np.zeros((3, 4), dtype=np.float32))
    result = run_rmlc(
        "predict", "--model", model, "--features", features, "--out", tmp_path / "p.csv"
    )
    assert result.returncode == 2, result.stderr
    assert "loading it can run code" in result.stderr and "--trusted" in result.stderr
    assert not marker.exists()
