"""What several commands share: the metrics table they print, and the images a command
is pointed at (a tags table or shard folder, a folder of images, or a built-in dataset)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

__all__ = ["Commands", "add_image_source", "format_metrics", "labeled_images"]

Commands = argparse._SubParsersAction  # what ``add_subparsers`` returns


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


def add_image_source(command: argparse.ArgumentParser, table_flag: str = "--table") -> None:
    """The flags that point a command at images: a tags table, a folder or a dataset."""
    command.add_argument(
        table_flag, dest="table", help="tags table (CSV or JSONL) or shard folder (rmlc shard)"
    )
    command.add_argument("--image-root", help="folder the table's image paths start from")
    command.add_argument("--images", help="a folder of images (every image file in it)")
    command.add_argument("--dataset", help="a built-in dataset name")
    command.add_argument("--split", default="test", help="split of --dataset")
    command.add_argument("--data-root", help="where --dataset lives")


def labeled_images(
    args: argparse.Namespace, trained, require_labels: bool = False
) -> tuple[Any, np.ndarray | None, list, np.ndarray | None]:
    """A view, targets, names and known entries of the images a command was pointed at (a
    tags table or a shard folder, a folder of images, or a built-in dataset); ``known`` is
    a bool ``(N, m)`` mask for a table with verified negatives (partial labels), else
    None."""
    from rmlc.inference import file_store, find_images, shard_store
    from rmlc.train.datasets import read_tags, table_images

    if getattr(args, "table", None):
        table, shards = read_tags(args.table, trained.class_names, require_labels)
        if shards is not None:
            store = shard_store(trained, shards)
        else:
            store = file_store(trained, table_images(table, None, args.image_root, args.table))
        targets = table.targets.toarray().astype(np.float32)
        known = table.known_mask() if table.has_negatives else None
        return trained.view(store), targets, list(table.images), known
    if getattr(args, "images", None):
        paths = find_images(args.images)
        names = [str(path.relative_to(args.images)) for path in paths]
        return trained.view(file_store(trained, paths)), None, names, None
    if getattr(args, "dataset", None):
        from rmlc.train.datasets import load_split

        store, targets = load_split(args.dataset, args.split, args.data_root, trained)
        return trained.view(store), targets, [str(i) for i in range(len(targets))], None
    raise ValueError("give --table (with --image-root), --images or --dataset")
