"""Files from elsewhere never run code when opened: checkpoints, weights and model files."""

from __future__ import annotations

import os

import pytest
import torch

from rmlc.cli import main
from rmlc.models import build_model, load_backbone_weights
from rmlc.train.checkpoint import CheckpointError, load_checkpoint


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
def test_every_command_refuses_it_with_a_clear_error(hostile, arguments, capsys) -> None:
    """Each command, called as the ``rmlc`` entry point calls it: exit code 2, the refusal
    on stderr, and no code run."""
    path, marker = hostile
    filled = [a.format(path=path, folder=path.parent) for a in arguments]
    code = main([*filled, "--no-progress"] if filled[0] == "train" else filled)
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert "does not unpickle them" in stderr
    assert not marker.exists()


def test_a_trainer_checkpoint_still_loads(tmp_path) -> None:
    path = tmp_path / "ok.pt"
    torch.save({"model": {"w": torch.ones(2)}, "history": [{"epoch": 1, "loss": 0.5}]}, path)
    assert load_checkpoint(path)["history"][0]["loss"] == 0.5


def test_predict_refuses_a_pickle_model_file(tmp_path, capsys) -> None:
    """``rmlc predict --model`` reads only the .npz format unless told ``--trusted``."""
    import joblib
    import numpy as np

    marker = tmp_path / "code-ran"
    model = tmp_path / "model.joblib"
    joblib.dump(_RunsCode(str(marker)), model)
    features = tmp_path / "f.npz"
    np.savez(features, X=np.zeros((3, 4), dtype=np.float32))
    arguments = ["--model", str(model), "--features", str(features)]
    code = main(["predict", *arguments, "--out", str(tmp_path / "p.csv")])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert "loading it can run code" in stderr and "--trusted" in stderr
    assert not marker.exists()
