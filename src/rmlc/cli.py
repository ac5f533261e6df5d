"""The ``rmlc`` command line: argument parsing only; the library does the work.

Subcommands: ``train``, ``evaluate``, ``predict``, ``extract-features``, ``fit-features``,
``corrupt``, ``shard``, ``data-stats``, ``pretrain``, ``reproduce`` and ``export``. Every
training option is a flag named after its :class:`~rmlc.train.config.TrainConfig` key
(``--batch-size`` for ``batch_size``); ``--config FILE.yaml`` sets many at once and flags
override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import linecache
import os
import sys
import types
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["main"]

_PACKAGE_FOLDER = Path(__file__).resolve().parent
_PYTHON_WARNING_FORMAT = warnings.formatwarning


# ---- output ---------------------------------------------------------------------------


def format_metrics(metrics: dict[str, Any], title: str = "metrics") -> str:
    """A small text table of the scalar metrics, in percent."""
    keys = [
        key
        for key in ("accuracy", "mAP", "P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O")
        if key in metrics
    ]
    width = max(len(key) for key in keys) if keys else 0
    lines = [title, "-" * max(len(title), width + 10)]
    lines += [f"{key:<{width}}  {metrics[key]:7.2f}" for key in keys]
    return "\n".join(lines)


# ---- train ----------------------------------------------------------------------------


def _field_parser(annotation: Any):
    """A string -> value parser for a TrainConfig field's annotation."""
    hints = (
        {arg for arg in typing.get_args(annotation)}
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else {annotation}
    )

    def parse(text: str) -> Any:
        if text.lower() in ("none", "null") and type(None) in hints:
            return None
        value = yaml.safe_load(text)
        if float in hints and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if (
            str in hints
            and not isinstance(value, str)
            and not ({int, float} & hints and isinstance(value, int | float))
        ):
            return text
        return value

    return parse


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig key, its help from ``CONFIG_HELP``; only flags given on the
    command line override. ``--loss`` lists the losses of the registry."""
    from rmlc.losses import LOSS_REGISTRY
    from rmlc.train.config import TrainConfig
    from rmlc.train.config_help import CONFIG_HELP

    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("training options (TrainConfig keys)")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        annotation = hints[field.name]
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        )
        about = CONFIG_HELP.get(field.name, "")  # tests/test_cli.py: none may be missing
        if "default:" not in about:  # where the help does not say the default's rule
            about = f"{about} (default: {default})".lstrip()
        if annotation in (bool, bool | None):  # --x / --no-x
            group.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=about,
            )
        else:
            choices = list(LOSS_REGISTRY) if field.name == "loss" else None
            listed = f"; one of {', '.join(choices)}" if choices else ""
            group.add_argument(
                flag,
                dest=field.name,
                type=_field_parser(annotation),
                choices=choices,
                default=argparse.SUPPRESS,
                metavar=field.name.upper(),
                help=f"{about}{listed}",
            )


def command_train(args: argparse.Namespace) -> int:
    from rmlc.train import TrainConfig, TrainingInterrupted, load_config, run
    from rmlc.train.stopping import StopRequest

    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("command", "config", "handler")
    }
    if (overrides.get("train") or overrides.get("test")) and "dataset" not in overrides:
        overrides["dataset"] = "tags"
    config = (
        load_config(args.config, overrides)
        if args.config
        else TrainConfig.from_dict(overrides, source="command line")
    )
    # Signals are recorded for the command's whole life, not only during training: one
    # before training starts stops it at its first step (with a checkpoint), one after the
    # last step lets the final evaluation and the results finish (the trainer's own handler
    # covers training itself). Never restored: the process ends after this.
    with StopRequest(restore=False, action="stopping when the current phase ends") as stop:
        try:
            metrics = run(config)
        except TrainingInterrupted as error:
            print(f"rmlc: {error}", file=sys.stderr)
            return error.exit_code
        print(format_metrics(metrics, _metrics_title(metrics)))
        print(f"run directory: {config.out}")
        if stop.requested:
            print("rmlc: the signal came after training had finished: the run is complete")
        return 0


def _metrics_title(metrics: dict[str, Any]) -> str:
    """What the printed metrics are: the test split's, of which epoch's network."""
    if "mAP" not in metrics:
        return "validation metrics"
    if metrics["best_epoch"] < 1:  # no validation split: the last epoch's network
        return f"test metrics (last epoch {metrics['epochs']}, no validation split)"
    which = "last" if metrics.get("select") == "last" else "best"
    return f"test metrics ({which} epoch {metrics['best_epoch']})"


# ---- evaluate / predict / extract-features ---------------------------------------------


def _labeled_images(
    args: argparse.Namespace, trained, require_labels: bool = False
) -> tuple[Any, np.ndarray | None, list]:
    """A view, targets and names of the images a command was pointed at (a tags table or
    a shard folder, a folder of images, or a built-in dataset)."""
    from rmlc.inference import file_store, find_images, shard_store
    from rmlc.train.datasets import read_tags, table_images

    if getattr(args, "table", None):
        table, shards = read_tags(args.table, trained.class_names, require_labels)
        if shards is not None:
            store = shard_store(trained, shards)
        else:
            store = file_store(trained, table_images(table, None, args.image_root, args.table))
        targets = table.targets.toarray().astype(np.float32)
        return trained.view(store), targets, list(table.images)
    if getattr(args, "images", None):
        paths = find_images(args.images)
        names = [str(path.relative_to(args.images)) for path in paths]
        return trained.view(file_store(trained, paths)), None, names
    if getattr(args, "dataset", None):
        from rmlc.train.datasets import load_split

        store, targets = load_split(args.dataset, args.split, args.data_root, trained)
        return trained.view(store), targets, [str(i) for i in range(len(targets))]
    raise ValueError("give --table (with --image-root), --images or --dataset")


def command_evaluate(args: argparse.Namespace) -> int:
    import torch

    from rmlc.atomic import atomic_write_text
    from rmlc.inference import load_trained_model, score_images
    from rmlc.metrics import MultiLabelMeter

    trained = load_trained_model(args.checkpoint, args.device)
    view, targets, _ = _labeled_images(args, trained, require_labels=True)
    if targets is None:
        raise ValueError("the images have no labels to evaluate against: give --test TABLE")
    scores = score_images(trained, view, args.device)
    meter = MultiLabelMeter(k=args.topk, threshold=trained.threshold, convention=args.convention)
    meter.update(torch.from_numpy(scores), torch.from_numpy(targets))
    metrics = meter.compute()
    metrics["threshold"] = trained.threshold  # the checkpoint's: chosen on validation, or 0
    print(format_metrics(metrics, f"metrics of {args.checkpoint}"))
    if args.out:
        atomic_write_text(json.dumps(metrics, indent=2), args.out)
    return 0


def command_predict(args: argparse.Namespace) -> int:
    from rmlc.inference import load_trained_model, score_images, write_predictions

    if args.model:  # a fixed-feature classifier on a features file
        from rmlc.data import load_features
        from rmlc.linear import RMLClassifier

        model = RMLClassifier.load(args.model, trusted=args.trusted)
        features, _ = load_features(args.features)
        if features.ndim != 2 or features.shape[1] != model.n_features_in_:
            raise ValueError(
                f"{args.features} holds features of shape {features.shape}, but the model "
                f"{args.model} was fitted on {model.n_features_in_} features per row"
            )
        scores = model.label_scores(features)
        names = [str(i) for i in range(len(scores))]
        classes = [str(c) for c in model.classes_]
        threshold = 0.0 if args.threshold is None else args.threshold
        write_predictions(args.out, names, scores, classes, args.topk, threshold)
        print(f"wrote predictions of {len(names)} samples to {args.out}")
        return 0
    if not args.checkpoint:
        raise ValueError("give --checkpoint (for images) or --model with --features")
    trained = load_trained_model(args.checkpoint, args.device)
    view, _, names = _labeled_images(args, trained)
    scores = score_images(trained, view, args.device)
    threshold = trained.threshold if args.threshold is None else args.threshold
    write_predictions(args.out, names, scores, trained.class_names, args.topk, threshold)
    print(f"wrote predictions of {len(names)} images to {args.out}")
    return 0


def command_extract_features(args: argparse.Namespace) -> int:
    from rmlc.data import save_features
    from rmlc.inference import load_trained_model, score_images

    trained = load_trained_model(args.checkpoint, args.device)
    view, targets, _ = _labeled_images(args, trained)
    features = score_images(trained, view, args.device, features=True)
    save_features(args.out, features, targets)
    print(f"wrote features {features.shape} to {args.out}")
    return 0


def command_audit(args: argparse.Namespace) -> int:
    from rmlc.audit import write_audit
    from rmlc.inference import audit_table

    if not str(args.out).lower().endswith(".csv"):
        raise ValueError(f"--out must be a .csv file, got {args.out}")
    folds_out = args.folds_out or f"{Path(args.out).with_suffix('')}.folds"
    result, images, classes = audit_table(
        args.checkpoint, args.table, args.image_root, args.folds, folds_out, args.device
    )
    write_audit(args.out, result, images, classes)
    flagged = sum(bool(len(w) or len(m)) for w, m in zip(result.wrong, result.missing, strict=True))
    print(f"wrote the audit of {len(images)} images to {args.out} ({flagged} with flagged tags)")
    return 0


# ---- fixed features ---------------------------------------------------------------------


def command_fit_features(args: argparse.Namespace) -> int:
    from rmlc.atomic import atomic_write_text, check_writable
    from rmlc.data import load_features
    from rmlc.linear import RMLClassifier

    check_writable(args.out)
    X, Y = load_features(args.train)
    if Y is None:
        raise ValueError(f"{args.train} has no labels (array 'Y')")
    X_unlabeled = load_features(args.unlabeled)[0] if args.unlabeled else None
    params = yaml.safe_load(args.params) if args.params else {}
    if args.loss is not None:  # else the estimator's default, the paper's RMLC
        params["loss"] = args.loss
    model = RMLClassifier(random_state=args.seed, verbose=True, device=args.device, **params)
    model.fit(X, Y, X_unlabeled=X_unlabeled)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.npz")
    atomic_write_text(
        yaml.safe_dump(
            {
                "train": args.train,
                "unlabeled": args.unlabeled,
                "test": args.test,
                **model.get_params(),
            },
            sort_keys=False,
        ),
        out / "config.yaml",
    )
    metrics: dict[str, Any] = {}
    if args.test:
        X_test, Y_test = load_features(args.test)
        if Y_test is None:
            raise ValueError(f"{args.test} has no labels (array 'Y')")
        metrics = model.metrics(X_test, Y_test, k=args.topk)
        print(format_metrics(metrics, "test metrics"))
    atomic_write_text(json.dumps(metrics, indent=2), out / "metrics.json")
    print(f"model and metrics written to {out}")
    return 0


# ---- data -------------------------------------------------------------------------------


def command_corrupt(args: argparse.Namespace) -> int:
    from rmlc.data import corrupt_file

    report = corrupt_file(
        args.input,
        args.output,
        rate=args.rate,
        drop=args.drop,
        seed=args.seed,
        hide=args.hide,
        single_positive=args.single_positive,
    )
    print(json.dumps(report, indent=2, default=str))
    return 0


def command_shard(args: argparse.Namespace) -> int:
    from rmlc.data import write_shards

    manifest_path = write_shards(
        args.table,
        args.out,
        image_root=args.image_root,
        samples_per_shard=args.samples_per_shard,
        bad_images=args.bad_images,
    )
    manifest = json.loads(manifest_path.read_text())
    print(
        f"wrote {manifest['samples']} samples ({manifest['unlabeled']} unlabeled) in "
        f"{len(manifest['shards'])} shards to {args.out}; manifest: {manifest_path}"
    )
    return 0


def command_data_stats(args: argparse.Namespace) -> int:
    from rmlc.data import (
        FASHION_MNIST_CLASSES,
        fashion_mosaic,
        format_statistics,
        format_table_statistics,
        mosaic_statistics,
        read_tags_table,
        table_statistics,
    )

    if args.table is not None:
        print(format_table_statistics(table_statistics(read_tags_table(args.table))))
        return 0
    _, targets = fashion_mosaic(args.split, source=args.source, n=args.n, seed=args.seed)
    print(format_statistics(mosaic_statistics(targets, FASHION_MNIST_CLASSES)))
    return 0


def command_pretrain(args: argparse.Namespace) -> int:
    from rmlc.data import load_fashion_mnist
    from rmlc.pretrain import rotation_pretrain, save_pretrained

    images, _ = load_fashion_mnist("train", source=args.source)  # images only, no labels
    network, info = rotation_pretrain(
        images, width=args.width, epochs=args.epochs, seed=args.seed, progress=True
    )
    path = save_pretrained(network, info, args.out)
    print(f"wrote {path} (rotation accuracy {info['rotation_accuracy']:.1f}% on the last epoch)")
    return 0


def command_reproduce(args: argparse.Namespace) -> int:
    from rmlc.experiments import reproduce

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    reproduce(
        args.target,
        quick=args.quick,
        seeds=args.seeds,
        out=Path(args.out),
        jobs=args.jobs,
        report_only=args.report_only,
    )
    return 0


def command_export(args: argparse.Namespace) -> int:
    from rmlc.export import export_onnx

    result = export_onnx(args.checkpoint, args.out, opset=args.opset, check=args.check)
    meta, side = result.metadata, result.metadata["image_size"]
    checked = f"; onnxruntime matches rmlc within {result.max_difference:.1g}" if args.check else ""
    print(
        f"wrote {result.path}: images uint8 (batch, {meta['channels']}, {side}, {side}) -> "
        f"scores (batch, {len(meta['class_names'])}){checked}"
    )
    return 0


# ---- parser ------------------------------------------------------------------------------


_Commands = argparse._SubParsersAction  # what ``add_subparsers`` returns


def build_parser() -> argparse.ArgumentParser:
    """The ``rmlc`` parser: one sub-command per task, each with its handler as a default."""
    parser = argparse.ArgumentParser(
        prog="rmlc",
        description="Robust, semi-supervised multi-label image classification (RML-CNN).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train_command(commands)
    _add_evaluate_command(commands)
    _add_predict_command(commands)
    _add_extract_features_command(commands)
    _add_fit_features_command(commands)
    _add_corrupt_command(commands)
    _add_shard_command(commands)
    _add_data_stats_command(commands)
    _add_pretrain_command(commands)
    _add_reproduce_command(commands)
    _add_export_command(commands)
    _add_audit_command(commands)
    return parser


def _add_image_source(command: argparse.ArgumentParser, table_flag: str = "--table") -> None:
    """The flags that point a command at images: a tags table, a folder or a dataset."""
    command.add_argument(
        table_flag, dest="table", help="tags table (CSV or JSONL) or shard folder (rmlc shard)"
    )
    command.add_argument("--image-root", help="folder the table's image paths start from")
    command.add_argument("--images", help="a folder of images (every image file in it)")
    command.add_argument("--dataset", help="a built-in dataset name")
    command.add_argument("--split", default="test", help="split of --dataset")
    command.add_argument("--data-root", help="where --dataset lives")


def _add_train_command(commands: _Commands) -> None:
    """``rmlc train``: a YAML config and one flag per TrainConfig key."""
    train = commands.add_parser(
        "train", help="train a network (no data arguments: the embedded fashion-mosaic set)"
    )
    train.add_argument("--config", help="YAML file of TrainConfig keys")
    add_config_flags(train)
    train.set_defaults(handler=command_train)


def _add_evaluate_command(commands: _Commands) -> None:
    """``rmlc evaluate``: metrics of a checkpoint on labeled images."""
    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on labeled images")
    evaluate.add_argument(
        "--checkpoint",
        required=True,
        help="a training checkpoint (best.pt or last.pt of a run folder)",
    )
    _add_image_source(evaluate, "--test")
    evaluate.add_argument(
        "--topk", type=int, default=3, help="a tag is predicted only among an image's top k"
    )
    evaluate.add_argument(
        "--convention",
        choices=["rmlc", "ml-gcn"],
        default="rmlc",
        help="top-k metrics by their definition, or as ML-GCN's code computes them (most "
        "published tables): it adds a phantom prediction to P-O per class never predicted",
    )
    evaluate.add_argument(
        "--device", default="cpu", help="device to run the network on: cpu, cuda or cuda:N"
    )
    evaluate.add_argument("--out", help="write the metrics to this JSON file")
    evaluate.set_defaults(handler=command_evaluate)


def _add_predict_command(commands: _Commands) -> None:
    """``rmlc predict``: labels of images (a checkpoint) or of features (a model)."""
    predict = commands.add_parser(
        "predict", help="top-k and thresholded labels of images (or of a features file)"
    )
    predict.add_argument("--checkpoint", help="a training checkpoint (for images)")
    predict.add_argument("--model", help="a fit-features model.npz (for --features)")
    predict.add_argument(
        "--trusted",
        action="store_true",
        help="also read an old joblib (pickle) --model; it can run code: only your own files",
    )
    predict.add_argument("--features", help="a features file (.npz or .npy)")
    _add_image_source(predict)
    predict.add_argument("--out", required=True, help="tags.csv or tags.json")
    predict.add_argument("--topk", type=int, default=3, help="tags listed per image (top k)")
    predict.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="minimum score of a tag (default: the checkpoint's, chosen on validation with "
        "rmlc train --threshold auto|per-class, or 0)",
    )
    predict.add_argument(
        "--device", default="cpu", help="device to run the network on: cpu, cuda or cuda:N"
    )
    predict.set_defaults(handler=command_predict)


def _add_extract_features_command(commands: _Commands) -> None:
    """``rmlc extract-features``: a checkpoint's penultimate-layer features."""
    extract = commands.add_parser(
        "extract-features", help="penultimate-layer features of a checkpoint, to .npz"
    )
    extract.add_argument(
        "--checkpoint",
        required=True,
        help="a training checkpoint (best.pt or last.pt of a run folder)",
    )
    _add_image_source(extract)
    extract.add_argument("--out", required=True, help="features file to write (.npz: X, Y)")
    extract.add_argument(
        "--device", default="cpu", help="device to run the network on: cpu, cuda or cuda:N"
    )
    extract.set_defaults(handler=command_extract_features)


def _add_fit_features_command(commands: _Commands) -> None:
    """``rmlc fit-features``: the linear RMLClassifier on fixed features."""
    from rmlc.losses import LOSS_REGISTRY

    fit = commands.add_parser(
        "fit-features", help="train the linear RMLClassifier on fixed features (CNN+RMLC)"
    )
    fit.add_argument("--train", required=True, help=".npz with X and Y")
    fit.add_argument("--unlabeled", help=".npz or .npy with X (semi-supervised)")
    fit.add_argument("--test", help=".npz with X and Y")
    fit.add_argument("--out", required=True, help="folder for model.npz, config, metrics")
    on_features = [name for name, entry in LOSS_REGISTRY.items() if entry.on_features]
    fit.add_argument(
        "--loss",
        choices=on_features,
        metavar="LOSS",
        help="one of " + ", ".join(on_features) + " (default: rmlc-paper, the paper's RMLC; "
        "rmlc is the recommended end-to-end RMLC, as in rmlc train)",
    )
    fit.add_argument("--params", help="YAML mapping of RMLClassifier parameters")
    fit.add_argument("--seed", type=int, default=0, help="random seed of the fit")
    fit.add_argument("--topk", type=int, default=3, help="k of the top-k test metrics")
    fit.add_argument(
        "--device", default="cpu", help="device to run the network on: cpu, cuda or cuda:N"
    )
    fit.set_defaults(handler=command_fit_features)


def _add_corrupt_command(commands: _Commands) -> None:
    """``rmlc corrupt``: a copy of a tags table or features file with noisy labels."""
    corrupt = commands.add_parser(
        "corrupt", help="write a copy of a tags table or features file with noisy labels"
    )
    corrupt.add_argument("input", help="tags table (.csv, .jsonl) or features file (.npz)")
    corrupt.add_argument("output", help="the corrupted copy to write (a new file)")
    corrupt.add_argument("--rate", type=float, default=0.0, help="fraction of samples relabeled")
    corrupt.add_argument(
        "--drop", type=float, default=0.0, help="fraction of positives dropped (made negative)"
    )
    corrupt.add_argument(
        "--hide",
        type=float,
        default=0.0,
        help="fraction of known tags hidden (made unknown; writes a negatives column)",
    )
    corrupt.add_argument(
        "--single-positive",
        action="store_true",
        help="keep one positive tag per image, every other tag unknown (tags tables)",
    )
    corrupt.add_argument("--seed", type=int, default=0, help="random seed of the corruption")
    corrupt.set_defaults(handler=command_corrupt)


def _add_shard_command(commands: _Commands) -> None:
    """``rmlc shard``: a tags table's images packed into WebDataset tar shards."""
    shard = commands.add_parser(
        "shard",
        help="pack a tags table's images into WebDataset tar shards (for rmlc train --train DIR)",
    )
    shard.add_argument("table", help="tags table (CSV or JSONL)")
    shard.add_argument("out", help="new folder for the shards and their manifest")
    shard.add_argument("--image-root", help="folder the table's image paths start from")
    shard.add_argument("--samples-per-shard", type=int, default=1000, help="images per tar file")
    shard.add_argument(
        "--bad-images",
        choices=["raise", "skip"],
        default="raise",
        help="unreadable image files: an error naming them all, or left out with a warning",
    )
    shard.set_defaults(handler=command_shard)


def _add_data_stats_command(commands: _Commands) -> None:
    """``rmlc data-stats``: statistics of the fashion-mosaic benchmark or of a tags table."""
    stats = commands.add_parser(
        "data-stats", help="statistics of the fashion-mosaic benchmark or of a tags table"
    )
    stats.add_argument(
        "--table",
        default=None,
        help="a tags table (.csv, .jsonl): its tags per class, verified negatives and known "
        "fraction (instead of the benchmark)",
    )
    stats.add_argument("--split", default="train", help="train or test mosaics")
    stats.add_argument(
        "--source",
        default="embedded",
        choices=["embedded", "full"],
        help="Fashion-MNIST images: the embedded subset or the full set",
    )
    stats.add_argument(
        "-n", type=int, default=None, help="mosaics (default: 4000 train, 1000 test embedded)"
    )
    stats.add_argument("--seed", type=int, default=0, help="seed of the mosaics")
    stats.set_defaults(handler=command_data_stats)


def _add_pretrain_command(commands: _Commands) -> None:
    """``rmlc pretrain``: a self-supervised small CNN for ``--weights``."""
    pretrain = commands.add_parser(
        "pretrain",
        help="self-supervised small CNN (rotation prediction, no labels) for --weights",
    )
    pretrain.add_argument("--out", required=True, help="weights file to write")
    pretrain.add_argument(
        "--source",
        default="embedded",
        choices=["embedded", "full"],
        help="Fashion-MNIST images: the embedded subset or the full set",
    )
    pretrain.add_argument("--width", type=int, default=16, help="small-cnn width")
    pretrain.add_argument("--epochs", type=int, default=8, help="training epochs")
    pretrain.add_argument("--seed", type=int, default=0, help="random seed")
    pretrain.set_defaults(handler=command_pretrain)


def _add_reproduce_command(commands: _Commands) -> None:
    """``rmlc reproduce``: re-test a table or figure of the paper."""
    from rmlc.experiments import EXPERIMENTS

    reproduce = commands.add_parser("reproduce", help="re-test a table or figure of the paper")
    reproduce.add_argument(
        "target", choices=[*EXPERIMENTS, "all"], help="the experiment to run, or all"
    )
    reproduce.add_argument(
        "--quick",
        action="store_true",
        help="the spec's quick settings: fewer seeds and values, a smaller budget",
    )
    reproduce.add_argument(
        "--seeds", type=int, default=None, help="seeds per method (default: the spec's)"
    )
    reproduce.add_argument("--out", default="results", help="folder for runs and reports")
    reproduce.add_argument(
        "--jobs", type=int, default=1, help="networks trained at once (worker processes)"
    )
    reproduce.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from the runs already done (trains nothing)",
    )
    reproduce.set_defaults(handler=command_reproduce)


def _add_export_command(commands: _Commands) -> None:
    """``rmlc export``: a checkpoint as an ONNX file for serving (``rmlc[export]``)."""
    from rmlc.export import DEFAULT_OPSET

    export = commands.add_parser(
        "export",
        help="write a checkpoint as an ONNX file for serving: uint8 images in, scores out "
        "(needs pip install 'rmlc[export]')",
    )
    export.add_argument(
        "--checkpoint", required=True, help="a training checkpoint (best.pt, last.pt)"
    )
    export.add_argument(
        "--out", required=True, help="the .onnx file to write (class names etc. in its metadata)"
    )
    export.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset: {DEFAULT_OPSET} (the default) or higher",
    )
    export.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare onnxruntime's scores with rmlc's on random images before writing",
    )
    export.set_defaults(handler=command_export)


def _add_audit_command(commands: _Commands) -> None:
    """``rmlc audit``: which tags of a table look wrong or missing."""
    audit = commands.add_parser(
        "audit",
        help="score every image of a tags table for wrong or missing tags, most suspect first",
    )
    audit.add_argument("--checkpoint", required=True, help="a training checkpoint (best.pt)")
    audit.add_argument(
        "--table", required=True, help="tags table (CSV or JSONL) or shard folder to audit"
    )
    audit.add_argument(
        "--image-root", help="folder the table's image paths start from (default: its folder)"
    )
    audit.add_argument(
        "--out", required=True, help="suspects.csv: image,score,wrong,missing, most suspect first"
    )
    audit.add_argument(
        "--folds",
        type=int,
        default=None,
        help="train this many networks with the checkpoint's training config, each on the "
        "table less one fold, and score every image with the one that did not see it "
        "(default: the checkpoint's own scores)",
    )
    audit.add_argument(
        "--folds-out",
        help="folder of the fold networks' runs (default: OUT less .csv, plus .folds)",
    )
    audit.add_argument("--device", default="cpu", help="where networks score and train")
    audit.set_defaults(handler=command_audit)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmlc`` command."""
    args = build_parser().parse_args(argv)
    formatting = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # no file path or source line on the terminal
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError, ArithmeticError, ImportError, RuntimeError) as error:
        if os.environ.get("RMLC_DEBUG") or not _raised_on_purpose(error):
            raise  # a bug: its traceback is what helps
        print(f"rmlc {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatting


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """A warning as the command shows it: ``rmlc: warning: MESSAGE`` (with ``RMLC_DEBUG``
    set, Python's form, with the file and line that warned)."""
    if os.environ.get("RMLC_DEBUG"):
        return _PYTHON_WARNING_FORMAT(message, category, filename, lineno, line)
    return f"rmlc: warning: {message}\n"


def _raised_on_purpose(error: BaseException) -> bool:
    """Whether ``error`` is one rmlc raises on purpose, to be shown as one line: raised by
    a ``raise`` statement in rmlc's own source (its checks of input, files and settings), or
    an operating-system error naming a file, or scikit-learn's check of an estimator's
    parameters. Anything else is a bug, shown with its traceback."""
    if isinstance(error, OSError) and error.filename is not None:
        return True
    if "sklearn" in sys.modules:  # loaded by the commands that use an estimator
        from sklearn.utils._param_validation import InvalidParameterError

        if isinstance(error, InvalidParameterError):
            return True
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    source = Path(frame.tb_frame.f_code.co_filename).resolve()
    if not source.is_relative_to(_PACKAGE_FOLDER):
        return False
    return linecache.getline(str(source), frame.tb_lineno).lstrip().startswith("raise")
