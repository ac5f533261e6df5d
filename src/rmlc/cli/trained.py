"""The commands that use a trained network: ``rmlc evaluate``, ``predict``,
``extract-features``, ``audit`` and ``export`` (``predict`` also a fitted
:class:`~rmlc.linear.RMLClassifier` on a features file)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rmlc.cli.common import Commands, add_image_source, format_metrics, labeled_images

__all__ = [
    "add_audit_command",
    "add_evaluate_command",
    "add_export_command",
    "add_extract_features_command",
    "add_predict_command",
]


def command_evaluate(args: argparse.Namespace) -> int:
    import torch

    from rmlc.atomic import atomic_write_text
    from rmlc.inference import load_trained_model, score_images
    from rmlc.metrics import MultiLabelMeter

    trained = load_trained_model(args.checkpoint, args.device)
    view, targets, _, known = labeled_images(args, trained, require_labels=True)
    if targets is None:
        raise ValueError("the images have no labels to evaluate against: give --test TABLE")
    scores = score_images(trained, view, args.device)
    meter = MultiLabelMeter(k=args.topk, threshold=trained.threshold, convention=args.convention)
    known = None if known is None else torch.from_numpy(known)  # only known tags are scored
    meter.update(torch.from_numpy(scores), torch.from_numpy(targets), known=known)
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
    view, _, names, _ = labeled_images(args, trained)
    scores = score_images(trained, view, args.device)
    threshold = trained.threshold if args.threshold is None else args.threshold
    write_predictions(args.out, names, scores, trained.class_names, args.topk, threshold)
    print(f"wrote predictions of {len(names)} images to {args.out}")
    return 0


def command_extract_features(args: argparse.Namespace) -> int:
    from rmlc.data import save_features
    from rmlc.inference import load_trained_model, score_images

    trained = load_trained_model(args.checkpoint, args.device)
    view, targets, _, _ = labeled_images(args, trained)
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


def add_evaluate_command(commands: Commands) -> None:
    """``rmlc evaluate``: metrics of a checkpoint on labeled images."""
    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on labeled images")
    evaluate.add_argument(
        "--checkpoint",
        required=True,
        help="a training checkpoint (best.pt or last.pt of a run folder)",
    )
    add_image_source(evaluate, "--test")
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


def add_predict_command(commands: Commands) -> None:
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
    add_image_source(predict)
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


def add_extract_features_command(commands: Commands) -> None:
    """``rmlc extract-features``: a checkpoint's penultimate-layer features."""
    extract = commands.add_parser(
        "extract-features", help="penultimate-layer features of a checkpoint, to .npz"
    )
    extract.add_argument(
        "--checkpoint",
        required=True,
        help="a training checkpoint (best.pt or last.pt of a run folder)",
    )
    add_image_source(extract)
    extract.add_argument("--out", required=True, help="features file to write (.npz: X, Y)")
    extract.add_argument(
        "--device", default="cpu", help="device to run the network on: cpu, cuda or cuda:N"
    )
    extract.set_defaults(handler=command_extract_features)


def add_audit_command(commands: Commands) -> None:
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


def add_export_command(commands: Commands) -> None:
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
