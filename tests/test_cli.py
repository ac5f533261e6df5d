"""The rmlc command line, end to end on data the tests write (real Fashion-MNIST images)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import signal
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from rmlc.cli import main
from rmlc.linear import RMLClassifier
from tests.train.conftest import write_mosaic_table

METRIC_KEYS = {"mAP", "P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O"}


@contextlib.contextmanager
def _restored(handlers: dict):
    """Put the signal handlers back after ``rmlc train``, which leaves its own installed
    (the process ends after it): a later test's trainer would otherwise find them, and
    with them a stop request it did not make."""
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny training run through the CLI on tags tables, shared by the tests below."""
    folder = tmp_path_factory.mktemp("cli")
    train = write_mosaic_table(folder, "train", 64, seed=1)
    test = write_mosaic_table(folder, "test", 32, seed=2)
    out = folder / "run"
    printed = io.StringIO()
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    with contextlib.redirect_stdout(printed), _restored(handlers):
        code = main(
            [
                "train",
                "--train",
                str(train),
                "--test",
                str(test),
                "--image-root",
                str(folder),
                "--backbone",
                "small-cnn",
                "--width",
                "4",
                "--image-size",
                "32",
                "--loss",
                "rmlc",
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--out",
                str(out),
                "--no-progress",
                "--no-tensorboard",
            ]
        )
    assert code == 0
    return {
        "folder": folder,
        "train": train,
        "test": test,
        "out": out,
        "printed": printed.getvalue(),
    }


def test_train_on_own_tags_tables(trained_run) -> None:
    metrics = json.loads((trained_run["out"] / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    assert (trained_run["out"] / "best.pt").is_file()
    assert "test metrics" in trained_run["printed"]
    assert f"F1-O  {metrics['F1-O']:7.2f}" in trained_run["printed"]


def test_evaluate(trained_run, tmp_path, capsys) -> None:
    out = tmp_path / "metrics.json"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(trained_run["out"] / "best.pt"),
            "--test",
            str(trained_run["test"]),
            "--image-root",
            str(trained_run["folder"]),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    evaluated = json.loads(out.read_text())
    trained = json.loads((trained_run["out"] / "metrics.json").read_text())
    assert evaluated["mAP"] == pytest.approx(trained["mAP"], abs=1e-6)
    assert "mAP" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_predict_folder(trained_run, tmp_path, suffix: str) -> None:
    out = tmp_path / f"tags{suffix}"
    code = main(
        [
            "predict",
            "--checkpoint",
            str(trained_run["out"] / "best.pt"),
            "--images",
            str(trained_run["folder"] / "images"),
            "--out",
            str(out),
            "--topk",
            "2",
        ]
    )
    assert code == 0
    if suffix == ".json":
        rows = json.loads(out.read_text())
        assert len(rows) == 96
        assert {"image", "topk", "labels"} <= set(rows[0])
        assert len(rows[0]["topk"]) == 2
        scores = [item["score"] for item in rows[0]["topk"]]
        assert scores == sorted(scores, reverse=True)
    else:
        with out.open() as stream:
            rows = list(csv.DictReader(stream))
        assert len(rows) == 96 and list(rows[0]) == ["image", "topk", "topk_scores", "labels"]
        assert len(rows[0]["topk"].split("|")) == 2
        assert rows[0]["image"].startswith("test-") or rows[0]["image"].startswith("train-")


def test_evaluate_predict_and_extract_from_a_shard_folder(trained_run, tmp_path) -> None:
    """A shard folder (rmlc shard) where a tags table goes: the same metrics, predictions
    (named by the images' original paths) and features as from the table's files."""
    from rmlc.data import write_shards

    shards = tmp_path / "test-shards"
    write_shards(
        trained_run["test"], shards, image_root=trained_run["folder"], samples_per_shard=10
    )
    checkpoint = str(trained_run["out"] / "best.pt")
    from_table = ["--image-root", str(trained_run["folder"])]
    outputs = {}
    for source, flags in (
        ("table", [str(trained_run["test"]), *from_table]),
        ("shards", [str(shards)]),
    ):
        out = tmp_path / source
        commands = [
            ["evaluate", "--checkpoint", checkpoint, "--test", *flags, "--out", f"{out}-m.json"],
            ["predict", "--checkpoint", checkpoint, "--table", *flags, "--out", f"{out}-p.csv"],
            [
                "extract-features",
                "--checkpoint",
                checkpoint,
                "--table",
                *flags,
                "--out",
                f"{out}-f.npz",
            ],
        ]
        for command in commands:
            assert main(command) == 0
        features = np.load(f"{out}-f.npz")
        outputs[source] = (
            json.loads(Path(f"{out}-m.json").read_text()),
            Path(f"{out}-p.csv").read_text(),
            features["X"],
            features["Y"],
        )
    metrics, predictions, features, targets = outputs["shards"]
    assert metrics == outputs["table"][0]
    assert predictions == outputs["table"][1] and "images/test-0000.png" in predictions
    np.testing.assert_array_equal(features, outputs["table"][2])
    np.testing.assert_array_equal(targets, outputs["table"][3])
    assert features.shape == (32, 16)


def test_evaluate_refuses_images_without_labels(trained_run, tmp_path, capsys) -> None:
    """An unlabeled row (empty labels) has no truth to score against: it is named, not
    counted as an image with no positive tag."""
    table = tmp_path / "test.csv"
    rows = trained_run["test"].read_text().splitlines()
    image = rows[3].split(",")[0]
    rows[3] = f"{image},"
    table.write_text("\n".join(rows) + "\n")
    checkpoint = str(trained_run["out"] / "best.pt")
    code = main(
        [
            "evaluate",
            "--checkpoint",
            checkpoint,
            "--test",
            str(table),
            "--image-root",
            str(trained_run["folder"]),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert f"{table}: 1 rows have no labels (labels are required): lines 4" in error


def test_extract_features_then_fit_features(trained_run, tmp_path) -> None:
    for split in ("train", "test"):
        code = main(
            [
                "extract-features",
                "--checkpoint",
                str(trained_run["out"] / "best.pt"),
                "--table",
                str(trained_run[split]),
                "--image-root",
                str(trained_run["folder"]),
                "--out",
                str(tmp_path / f"{split}.npz"),
            ]
        )
        assert code == 0
    features = np.load(tmp_path / "train.npz")
    assert features["X"].shape == (64, 16) and features["Y"].shape == (64, 10)
    code = main(
        [
            "fit-features",
            "--train",
            str(tmp_path / "train.npz"),
            "--test",
            str(tmp_path / "test.npz"),
            "--out",
            str(tmp_path / "linear"),
            "--params",
            "{max_epochs: 3}",
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "linear" / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    assert (tmp_path / "linear" / "model.npz").is_file()
    code = main(
        [
            "predict",
            "--model",
            str(tmp_path / "linear" / "model.npz"),
            "--features",
            str(tmp_path / "test.npz"),
            "--out",
            str(tmp_path / "pred.csv"),
        ]
    )
    assert code == 0
    assert len((tmp_path / "pred.csv").read_text().splitlines()) == 33


def test_config_file_with_overrides(tmp_path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("epochs: 1\nbatch_sise: 8\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key 'batch_sise'; did you mean 'batch_size'?" in capsys.readouterr().err
    assert main(["train", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "lr must be > 0" in capsys.readouterr().err


def test_corrupt_and_data_stats(trained_run, tmp_path, capsys) -> None:
    out = tmp_path / "noisy.csv"
    assert main(["corrupt", str(trained_run["train"]), str(out), "--rate", "0.5"]) == 0
    assert len(out.read_text().splitlines()) == 65
    assert main(["data-stats", "-n", "200"]) == 0
    assert "Trouser" in capsys.readouterr().out


def test_fit_features_with_whitening_params(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6)).astype(np.float32) @ rng.normal(size=(6, 6)).astype(np.float32)
    Y = (X[:, :3] > 0).astype(np.int64)
    np.savez(tmp_path / "train.npz", X=X[:60], Y=Y[:60])
    np.savez(tmp_path / "test.npz", X=X[60:], Y=Y[60:])
    base = ["fit-features", "--train", str(tmp_path / "train.npz")]
    base += ["--test", str(tmp_path / "test.npz"), "--out", str(tmp_path / "linear")]
    assert main([*base, "--params", "{whiten: 0.001, max_epochs: 2}"]) == 0
    model = RMLClassifier.load(tmp_path / "linear" / "model.npz")
    assert model.whiten == 0.001 and model.whitening_.shape == (6, 6)
    assert "whiten: 0.001" in (tmp_path / "linear" / "config.yaml").read_text()
    # PyYAML reads 1e-3 (no dot) as a string: the error names the parameter and the value.
    capsys.readouterr()
    assert main([*base, "--params", "{whiten: 1e-3}"]) == 2
    error = capsys.readouterr().err
    assert "'whiten' parameter of RMLClassifier must be a float" in error and "'1e-3'" in error


def _actions_without_help(parser: argparse.ArgumentParser, command: str) -> list[str]:
    """``"rmlc CMD --flag"`` of every argument of a parser and its sub-commands whose help
    is missing or says no more than the default."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            said = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not said.get(name):  # the sub-command's own line in ``rmlc --help``
                    missing.append(f"{command} {name}")
                missing += _actions_without_help(sub, f"{command} {name}")
            continue
        text = (action.help or "").strip()
        if not text or text == argparse.SUPPRESS or text.startswith("(default"):
            missing.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_flag_of_every_command_has_help() -> None:
    from rmlc.cli import build_parser
    from rmlc.train.config import TrainConfig
    from rmlc.train.config_help import CONFIG_HELP

    keys = {field.name for field in dataclasses.fields(TrainConfig)}
    assert sorted(keys - set(CONFIG_HELP)) == []  # a new key needs its line of help
    assert sorted(set(CONFIG_HELP) - keys) == []
    assert _actions_without_help(build_parser(), "rmlc") == []


def test_no_training_flag_states_its_default_twice() -> None:
    # A help text that says its default's rule keeps the parser from appending
    # "(default: None)" after it (--ramp-start once said "default 1" and then "None").
    from rmlc.cli import build_parser

    train = next(
        action.choices["train"]
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    twice = [a.option_strings for a in train._actions if (a.help or "").count("default") > 1]
    assert twice == []
    ramp_start = next(a for a in train._actions if "--ramp-start" in a.option_strings)
    assert "default: 1 for rmlc" in ramp_start.help and "None" not in ramp_start.help


def test_the_help_walk_finds_a_flag_without_help() -> None:
    parser = argparse.ArgumentParser(prog="x")
    commands = parser.add_subparsers(dest="command")
    sub = commands.add_parser("cmd", help="a command")
    sub.add_argument("--said", help="what it does")
    sub.add_argument("--bare")
    sub.add_argument("--default-only", help="(default: 3)")
    commands.add_parser("quiet")
    assert _actions_without_help(parser, "x") == [
        "x cmd --bare",
        "x cmd --default-only",
        "x quiet",
    ]


def test_a_second_run_into_a_run_folder_is_refused(trained_run, capsys) -> None:
    before = (trained_run["out"] / "log.csv").read_text()
    code = main(["train", "--train", str(trained_run["train"]), "--out", str(trained_run["out"])])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "already holds a run (config.yaml, log.csv" in error
    assert "--resume" in error and "--overwrite" in error
    assert (trained_run["out"] / "log.csv").read_text() == before


def test_a_first_run_is_quiet_and_says_every_count(tmp_path, monkeypatch, capsys) -> None:
    """The default path without tensorboard installed: no Python warning, one log line for
    TensorBoard, one for each table's rows (the blank line said), one for the small
    validation split; log.csv has no accuracy column on multi-label data."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    table = write_mosaic_table(tmp_path, "train", 40, seed=1)
    rows = table.read_text().splitlines()
    table.write_text("\n".join([*rows[:5], "", *rows[5:]]) + "\n")
    out = tmp_path / "x"
    flags = ["--width", "4", "--image-size", "32", "--batch-size", "16", "--num-workers", "0"]
    data = ["--train", str(table), "--test", str(table), "--image-root", str(tmp_path)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", *data, "--epochs", "1", "--out", str(out), *flags])
    assert code == 0
    printed = capsys.readouterr()
    assert [str(w.message) for w in caught if "rmlc" in w.filename] == []
    assert "Warning" not in printed.err
    said = printed.out.splitlines()
    assert sum("TensorBoard logging is off" in line for line in said) == 1
    blank = "1 blank line skipped (line 6)"
    used = "36 training, 4 validation, 0 unlabeled, 0 dropped"
    assert f"rows of {table} (train table): 40 rows: {used}; {blank}" in said
    assert f"rows of {table} (test table): 40 rows: 40 test, 0 dropped; {blank}" in said
    assert sum(line.startswith("warning: the validation split (4 images)") for line in said) == 1
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert "val_mAP" in header and "val_accuracy" not in header
    metrics = json.loads((out / "metrics.json").read_text())
    assert "accuracy" not in metrics and metrics["rows"]["train"]["blank_lines"] == 1


def test_fit_features_loss_names_mean_what_they_mean_in_training(tmp_path, capsys) -> None:
    """Without --loss the estimator's default, the paper's RMLC (``rmlc-paper``); --loss
    takes the registry's names that apply on features, and refuses others."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    Y = (X[:, :3] > 0).astype(np.int64)
    np.savez(tmp_path / "train.npz", X=X, Y=Y)
    base = ["fit-features", "--train", str(tmp_path / "train.npz"), "--params", "{max_epochs: 2}"]
    assert main([*base, "--out", str(tmp_path / "default")]) == 0
    assert RMLClassifier.load(tmp_path / "default" / "model.npz").loss == "rmlc-paper"
    assert "loss: rmlc-paper" in (tmp_path / "default" / "config.yaml").read_text()
    assert main([*base, "--out", str(tmp_path / "gce"), "--loss", "gce"]) == 0
    assert RMLClassifier.load(tmp_path / "gce" / "model.npz").loss == "gce"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--out", str(tmp_path / "x"), "--loss", "hinge"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'hinge' (choose from 'rmlc', 'rmlc-paper'" in capsys.readouterr().err
