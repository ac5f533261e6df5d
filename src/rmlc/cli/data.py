"""The data commands: ``rmlc corrupt``, ``rmlc shard`` and ``rmlc data-stats``."""

from __future__ import annotations

import argparse
import json
import sys

from rmlc.cli.common import Commands

__all__ = ["add_corrupt_command", "add_data_stats_command", "add_shard_command"]


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
    became = report.get("became_unlabeled", [])
    if became:
        from rmlc.data.tags_table import tags_table_format

        first = 2 if tags_table_format(args.output, None) == "csv" else 1  # CSV: a header line
        lines = ", ".join(str(row + first) for row in became[:10]) + (
            " ..." if len(became) > 10 else ""
        )
        print(
            f"rmlc corrupt: {len(became)} labeled row(s) lost every known tag and were written "
            f"with empty labels (line {lines} of {args.output}); rmlc train refuses them unless "
            "told: --empty-labels unlabeled (train on them as unlabeled images) or "
            "--empty-labels skip",
            file=sys.stderr,
        )
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


def add_corrupt_command(commands: Commands) -> None:
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


def add_shard_command(commands: Commands) -> None:
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


def add_data_stats_command(commands: Commands) -> None:
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
