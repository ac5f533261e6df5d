"""Bad input through the Python API and the command line: each case gets an error (or a
documented warning and skip) that names the problem and the file, row or parameter.

The cases of docs/guarantees.md are numbered here; tests of the modules cover the
same errors in more detail (tests/losses, tests/data, tests/test_metrics.py, ...).
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rmlc import RMLCLoss
from rmlc.cli import main
from rmlc.data import load_features, read_tags_table
from rmlc.linear import RMLClassifier
from rmlc.metrics import topk_metrics
from rmlc.propagation import propagate_labels
from rmlc.train import TrainConfig
from rmlc.train.datasets import build_training_data
from tests.train.conftest import tiny_config, write_mosaic_table


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI; return its exit code and what it wrote to stderr."""
    error = io.StringIO()
    with contextlib.redirect_stderr(error), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(arg) for arg in args])
    return code, error.getvalue()


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    return {
        "root": folder,
        "train": write_mosaic_table(folder, "train", 40, seed=1),
        "test": write_mosaic_table(folder, "test", 16, seed=2),
    }


def train_args(tables, out: Path, *extra) -> list:
    return [
        "train",
        "--train",
        tables["train"],
        "--test",
        tables["test"],
        "--image-root",
        tables["root"],
        "--width",
        "4",
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        out,
        "--no-progress",
        "--no-tensorboard",
        *extra,
    ]


def features_file(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


# 1-3: targets outside the encodings, wrong shapes, wrong dtypes -----------------------------


def test_01_targets_outside_the_encodings(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"found values \{0, 1, 3\}"):
        RMLCLoss.paper()(torch.zeros(2, 3), torch.tensor([[0.0, 1, 3], [0, 0, 1]]))
    train = features_file(tmp_path / "t.npz", X=np.ones((4, 3)), Y=np.array([[0, 2], [1, 0]] * 2))
    code, error = cli("fit-features", "--train", train, "--out", tmp_path / "o")
    assert code == 2 and "found values {0, 1, 2}" in error


def test_02_wrong_shapes() -> None:
    with pytest.raises(ValueError, match=r"does not match logits shape \(2, 3\)"):
        RMLCLoss.paper()(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="shape"):
        topk_metrics(torch.zeros(3, 4), torch.zeros(3, 5))


def test_03_wrong_dtypes() -> None:
    with pytest.raises(TypeError, match="floating point"):
        RMLCLoss.paper()(torch.zeros(2, 3, dtype=torch.int32), torch.zeros(2, 3))


# 4-5: NaN and inf in features ----------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_04_05_nan_or_inf_in_features(tmp_path, value) -> None:
    X = np.ones((6, 3))
    X[2, 1] = value
    Y = np.eye(6, 2, dtype=int)
    with pytest.raises(ValueError, match="NaN|infinity"):
        RMLClassifier().fit(X, Y)
    with pytest.raises(ValueError, match="X_unlabeled"):
        propagate_labels(np.ones((3, 3)), np.eye(3, 2), X)
    path = features_file(tmp_path / "bad.npz", X=X, Y=Y)
    code, error = cli("fit-features", "--train", path, "--out", tmp_path / "o")
    assert code == 2 and "bad.npz" in error


# 6-7: empty data set, a labeled set with no labeled rows ------------------------------------


def test_06_empty_dataset(tmp_path, tables) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("image,labels\n")
    with pytest.raises(ValueError, match="empty.csv has no rows"):
        build_training_data(tiny_config(tables, tmp_path / "r", train=str(empty)))
    code, error = cli(*train_args({**tables, "train": empty}, tmp_path / "run"))
    assert code == 2 and "empty.csv has no rows" in error
    with pytest.raises(ValueError, match="empty"):
        RMLCLoss.paper()(torch.zeros(0, 3), torch.zeros(0, 3))


def test_07_no_labeled_rows(tmp_path, tables) -> None:
    rows = tables["train"].read_text().splitlines()
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("\n".join([rows[0]] + [row.split(",")[0] + "," for row in rows[1:]]))
    code, error = cli(*train_args({**tables, "train": unlabeled}, tmp_path / "run"))
    assert code == 2 and "unlabeled.csv: no row has labels" in error


# 8-10: a class never positive, one class, an empty unlabeled set -----------------------------


def test_08_class_never_positive_warns(tmp_path) -> None:
    from rmlc.train.data import ArrayStore, assemble

    images = np.zeros((20, 1, 8, 8), dtype=np.uint8)
    targets = np.zeros((20, 3), dtype=np.float32)
    targets[:, 0], targets[::2, 1] = 1, 1  # class "c" is never positive
    config = TrainConfig(out=str(tmp_path), validation_fraction=0.0)
    with pytest.warns(UserWarning, match="never positive in the labeled training data: c"):
        assemble(
            ArrayStore(images), targets, np.arange(20), np.arange(0), None, ["a", "b", "c"], config
        )


def test_09_a_single_class_trains(tmp_path, tables) -> None:
    folder = tables["root"]
    table = tmp_path / "one.csv"
    rows = tables["train"].read_text().splitlines()[1:]
    table.write_text("image,labels\n" + "\n".join(f"{r.split(',')[0]},item" for r in rows) + "\n")
    code, error = cli(
        *train_args({**tables, "train": table, "test": table, "root": folder}, tmp_path / "run")
    )
    assert code == 0, error
    value = RMLCLoss.paper()(torch.randn(5, 1), torch.ones(5, 1))
    assert torch.isfinite(value)


def test_10_empty_unlabeled_set(tables, tmp_path) -> None:
    from rmlc.train.datasets import build_training_data

    result = propagate_labels(np.ones((3, 2)), np.eye(3, 2), np.zeros((0, 2)))
    assert result.labels.shape == (0, 2)
    config = tiny_config(tables, tmp_path / "run", semi_supervised=True)
    with pytest.warns(UserWarning, match="no unlabeled samples"):
        build_training_data(config)


# 11: feature dimension differing between fit and predict -------------------------------------


def test_11_feature_dimension_mismatch(tmp_path) -> None:
    X, Y = np.random.default_rng(0).normal(size=(30, 4)), np.eye(30, 3, dtype=int)
    model = RMLClassifier(max_epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="4 features"):
        model.predict(X[:, :2])
    model.save(tmp_path / "m.npz")
    path = features_file(tmp_path / "f.npz", X=X[:, :2])
    code, error = cli(
        "predict", "--model", tmp_path / "m.npz", "--features", path, "--out", tmp_path / "p.csv"
    )
    assert code == 2 and "4 features" in error


# 12-15: unreadable, truncated, zero-byte and missing image files ----------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "missing"])
def test_12_15_bad_image_files(tmp_path, tables, damage: str) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tables["root"], folder)
    victim = folder / "images" / "train-0003.png"
    if damage == "garbage":
        victim.write_bytes(b"this is not a png")
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:60])
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        victim.unlink()
    copies = {"root": folder, "train": folder / "train.csv", "test": folder / "test.csv"}
    code, error = cli(*train_args(copies, tmp_path / "run"))
    assert code == 2 and "train-0003.png" in error
    assert not (tmp_path / "run" / "last.pt").exists()  # failed before any training
    with pytest.warns(UserWarning, match=r"(?s)skipped: 1 of \d+ image files.*train-0003"):
        code = main([str(a) for a in train_args(copies, tmp_path / "run2", "--bad-images", "skip")])
    assert code == 0


def test_12_15_every_bad_file_is_named_in_one_run(tmp_path, tables) -> None:
    """Bad files of the training and test splits, of every kind, are found in one pass
    and reported together; nothing of the run folder is written."""
    folder = tmp_path / "copy"
    shutil.copytree(tables["root"], folder)
    images = folder / "images"
    damaged = {
        "train-0001.png": "not an image",
        "train-0002.png": "empty",
        "train-0004.png": "missing",
        "test-0000.png": "truncated",
    }
    for name in sorted(images.glob("train-00[1-4]*.png"))[:22]:  # 22 more: over the 20 named
        name.write_bytes(b"junk")
        damaged[name.name] = "not an image"
    (images / "train-0001.png").write_bytes(b"junk")
    (images / "train-0002.png").write_bytes(b"")
    (images / "train-0004.png").unlink()
    test_image = images / "test-0000.png"
    test_image.write_bytes(test_image.read_bytes()[:60])
    copies = {"root": folder, "train": folder / "train.csv", "test": folder / "test.csv"}
    code, error = cli(*train_args(copies, tmp_path / "run"))
    assert code == 2
    assert f"{len(damaged)} of " in error and "image files cannot be read" in error
    assert "... and 6 more" in error and "--bad-images skip" in error
    assert "empty file (0 bytes) (training)" in error and "file not found" in error
    listed = [
        line.split("\t") for line in (tmp_path / "run.bad-images.txt").read_text().splitlines()
    ]
    assert sorted(Path(path).name for _, path, _ in listed) == sorted(damaged)
    assert [split for split, path, _ in listed if "test-0000" in path] == ["test"]
    assert not (tmp_path / "run").exists()


# 16-17: duplicate rows, unknown labels against a class list ----------------------------------


def test_16_duplicate_rows(tmp_path, tables) -> None:
    rows = tables["train"].read_text().splitlines()
    table = tmp_path / "dup.csv"
    table.write_text("\n".join([*rows, rows[3]]) + "\n")
    with pytest.raises(ValueError, match="dup.csv.*duplicate"):
        read_tags_table(table)
    code, error = cli(*train_args({**tables, "train": table}, tmp_path / "run"))
    assert code == 2 and "duplicate" in error


def test_17_unknown_label(tmp_path, tables) -> None:
    code, _ = cli(*train_args(tables, tmp_path / "run"))
    assert code == 0
    table = tmp_path / "test.csv"
    table.write_text("image,labels\nimages/test-0000.png,Trouser|Hat\n")
    code, error = cli(
        "evaluate",
        "--checkpoint",
        tmp_path / "run" / "best.pt",
        "--test",
        table,
        "--image-root",
        tables["root"],
    )
    assert code == 2 and "test.csv" in error and "Hat" in error


# 18-22: config keys and hyper-parameters -------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--loss-params", "{s: 0.5}"], r"s must lie in \(-1, 0\]"),
        (["--loss-params", "{s: -1.0}"], r"s must lie in \(-1, 0\]"),
        (["--loss-params", "{kappa: -2}"], r"kappa must lie in \[0, inf\); got -2"),
        (["--loss-params", "{kapa: 2}"], "does not take parameters"),
        (["--lr", "0"], "lr must be > 0"),
        (["--label-noise", "1.5"], r"label_noise must lie in \[0, 1\]"),
        (["--backbone", "resnet7"], "backbone must be one of"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--bad-images", "ignore"], "bad_images must be"),
    ],
)
def test_18_22_out_of_range_settings(tmp_path, tables, flags, message) -> None:
    code, error = cli(*train_args(tables, tmp_path / "run", *flags))
    assert code == 2 and __import__("re").search(message, error), error


def test_18_unknown_config_key(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown key 'epoch'; did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})


def test_21_negative_sample_weights() -> None:
    with pytest.raises(ValueError, match="non-negative, found -0.5"):
        RMLCLoss.paper()(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        RMLClassifier().fit(np.ones((2, 2)), np.eye(2, 2), sample_weight=[1.0, -1.0])


# 23-24, 27: checkpoints of another model, damaged checkpoints ---------------------------------


def test_23_24_27_checkpoints(tmp_path, tables) -> None:
    code, _ = cli(*train_args(tables, tmp_path / "run"))
    assert code == 0
    checkpoint = tmp_path / "run" / "best.pt"
    code, error = cli(
        *train_args(
            tables, tmp_path / "other", "--backbone", "resnet18", "--init-checkpoint", checkpoint
        )
    )
    assert code == 2 and "for backbone 'small-cnn', not 'resnet18'" in error
    one_class = tmp_path / "one.csv"
    one_class.write_text("image,labels\nimages/train-0000.png,x\nimages/train-0001.png,y\n")
    code, error = cli(
        *train_args(
            {**tables, "train": one_class, "test": one_class},
            tmp_path / "two",
            "--init-checkpoint",
            checkpoint,
            "--validation-fraction",
            "0",
        )
    )
    assert code == 2 and "has 10 classes, the data has 2" in error
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x00" * 100)
    code, error = cli(
        "evaluate",
        "--checkpoint",
        damaged,
        "--test",
        tables["test"],
        "--image-root",
        tables["root"],
    )
    assert code == 2 and "damaged.pt is not a readable checkpoint" in error


# 25: features files without the expected arrays ---------------------------------------------


def test_25_features_file_without_arrays(tmp_path) -> None:
    path = features_file(tmp_path / "f.npz", features=np.ones((3, 2)))
    with pytest.raises(ValueError, match="f.npz.*'X'"):
        load_features(path)
    only_x = features_file(tmp_path / "x.npz", X=np.ones((3, 2)))
    code, error = cli("fit-features", "--train", only_x, "--out", tmp_path / "o")
    assert code == 2 and "x.npz has no labels" in error


# 26: an output folder that cannot be written ---------------------------------------------------


def test_26_unwritable_output(tmp_path, tables) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code, error = cli(*train_args(tables, blocker / "run"))
    assert code == 2 and "cannot be written" in error and "file/run" in error
    code, error = cli(
        "fit-features",
        "--train",
        features_file(tmp_path / "t.npz", X=np.ones((4, 2)), Y=np.eye(4, 2)),
        "--out",
        blocker / "x",
    )
    assert code == 2 and "cannot be written" in error


# 28-30: mismatched lengths, mixed encodings, a missing header -------------------------------


def test_28_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(N,\) = \(2,\)"):
        RMLCLoss.paper()(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="Y_labeled"):
        propagate_labels(np.ones((3, 2)), np.eye(4, 2), np.ones((2, 2)))


def test_29_mixed_encodings() -> None:
    with pytest.raises(ValueError, match=r"found values \{-1, 0, 1\}"):
        RMLCLoss.paper()(torch.zeros(1, 3), torch.tensor([[-1.0, 0.0, 1.0]]))


def test_30_table_without_header(tmp_path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("images/a.png,x\n")
    with pytest.raises(ValueError, match="t.csv"):
        read_tags_table(table)


# 31-33: pretrained weights offline, an empty image folder, NaN scores ------------------------


def test_31_pretrained_weights_unreachable(monkeypatch) -> None:
    import torchvision

    from rmlc.models import build_model

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(RuntimeError, match="--weights PATH"):
        build_model("resnet18", 10, pretrained=True)


def test_32_image_folder_without_images(tmp_path, tables) -> None:
    code, _ = cli(*train_args(tables, tmp_path / "run"))
    (tmp_path / "empty").mkdir()
    code, error = cli(
        "predict",
        "--checkpoint",
        tmp_path / "run" / "best.pt",
        "--images",
        tmp_path / "empty",
        "--out",
        tmp_path / "p.csv",
    )
    assert code == 2 and "no image files" in error


def test_33_nan_scores_in_metrics() -> None:
    with pytest.raises(ValueError, match="NaN"):
        topk_metrics(torch.tensor([[float("nan"), 1.0]]), torch.tensor([[1.0, 0.0]]))


# 34-35: a training row without labels, a run folder holding another run ----------------------


def test_34_training_rows_with_empty_labels(tmp_path, tables) -> None:
    header, *rows = tables["train"].read_text().splitlines()
    rows[4] = rows[4].split(",")[0] + ","
    table = tmp_path / "train.csv"
    table.write_text("\n".join([header, *rows]) + "\n")
    code, error = cli(*train_args({**tables, "train": table}, tmp_path / "run"))
    assert code == 2 and "train.csv: 1 row has an empty labels field (line 6)" in error
    assert "--empty-labels skip" in error
    assert not (tmp_path / "run").exists()


def test_35_output_folder_holding_another_run(tmp_path, tables) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.csv").write_text("epoch\n1\n")
    code, error = cli(*train_args(tables, tmp_path / "run"))
    assert code == 2 and f"{tmp_path / 'run'} already holds a run (log.csv)" in error
    assert "--resume" in error and "--overwrite" in error
    assert (tmp_path / "run" / "log.csv").read_text() == "epoch\n1\n"
