"""``rmlc train`` (one flag per :class:`~rmlc.train.config.TrainConfig` key),
``rmlc fit-features``, ``rmlc pretrain`` and ``rmlc reproduce``: the commands that train."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from rmlc.cli.common import Commands, format_metrics

__all__ = [
    "add_config_flags",
    "add_fit_features_command",
    "add_pretrain_command",
    "add_reproduce_command",
    "add_train_command",
]


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


def add_train_command(commands: Commands) -> None:
    """``rmlc train``: a YAML config and one flag per TrainConfig key."""
    train = commands.add_parser(
        "train", help="train a network (no data arguments: the embedded fashion-mosaic set)"
    )
    train.add_argument("--config", help="YAML file of TrainConfig keys")
    add_config_flags(train)
    train.set_defaults(handler=command_train)


def add_fit_features_command(commands: Commands) -> None:
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


def add_pretrain_command(commands: Commands) -> None:
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


def add_reproduce_command(commands: Commands) -> None:
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
