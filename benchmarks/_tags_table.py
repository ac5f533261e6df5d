"""Helpers of the benchmarks that train as a user does, from a tags table of image files
(``partial_tags_table.py``, ``noisy_tags_table.py``): the table, one ``rmlc train`` run,
and paired differences over seeds."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rmlc.data import FASHION_MNIST_CLASSES, load_embedded_fashion_mnist, make_mosaics


def write_table(folder: Path, split: str, count: int, seed: int, negatives: bool) -> Path:
    """``count`` RGB PNG mosaics of Fashion-MNIST's ``split`` images under ``folder/split``
    and a tags table ``folder/split.csv`` (with ``negatives``: a column verifying every
    absent tag)."""
    images, labels = load_embedded_fashion_mnist(split)
    mosaics, targets = make_mosaics(images, labels, count, seed=seed, num_classes=10)
    (folder / split).mkdir(parents=True, exist_ok=True)
    names = np.asarray(FASHION_MNIST_CLASSES)
    rows = ["image,labels,negatives" if negatives else "image,labels"]
    for index, (mosaic, target) in enumerate(zip(mosaics, targets, strict=True)):
        relative = f"{split}/{index:05d}.png"
        Image.fromarray(mosaic[0]).convert("RGB").save(folder / relative)
        row = f"{relative},{'|'.join(names[target > 0])}"
        rows.append(row + (f",{'|'.join(names[target == 0])}" if negatives else ""))
    table = folder / f"{split}.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


def write_tables(folder: Path, train: int, negatives: bool) -> tuple[Path, Path]:
    """The benchmark's training table (``train`` mosaics of training images) and clean test
    table (1,000 of test images) under ``folder``, written once (kept when they exist)."""
    tables = []
    for split, count, seed in (("train", train, 1), ("test", 1000, 2)):
        table = folder / f"{split}.csv"
        tables.append(
            table if table.exists() else write_table(folder, split, count, seed, negatives)
        )
    return tables[0], tables[1]


def corrupted_copy(table: Path, copy: Path, seed: int, *flags: str) -> Path:
    """``rmlc corrupt TABLE COPY FLAGS --seed SEED`` once (kept when it exists)."""
    if not copy.exists():
        rmlc("corrupt", str(table), str(copy), *flags, "--seed", str(seed))
    return copy


def rmlc(*args: str) -> None:
    """Run one ``rmlc`` command as a user would; stop on failure."""
    subprocess.run([sys.executable, "-m", "rmlc", *args], check=True)


def train_run(out: Path, table: Path, test: Path, root: Path, seed: int, *flags: str) -> dict:
    """One ``rmlc train`` run into ``out`` (or its finished metrics if it already ran):
    the clean test split's ``mAP`` and ``F1-C`` at the epoch validation picks."""
    metrics = out / "metrics.json"
    if not metrics.exists():
        rmlc("train", "--train", str(table), "--test", str(test), "--image-root", str(root),
             "--seed", str(seed), "--out", str(out), "--overwrite", "--no-progress",
             *flags)  # fmt: skip
    result = json.loads(metrics.read_text())
    test_metrics = result.get("test", result)
    return {"mAP": float(test_metrics["mAP"]), "F1-C": float(test_metrics["F1-C"])}


def paired_line(metric: str, better: str, worse: str, differences: list[float]) -> str:
    """A line of a report: the mean paired difference ``better - worse`` over seeds, its
    standard deviation and in how many seeds ``better`` was ahead."""
    spread = statistics.stdev(differences) if len(differences) > 1 else float("nan")
    wins = sum(value > 0 for value in differences)
    return (
        f"- {metric}: {better} minus {worse}, mean {statistics.mean(differences):+.2f} "
        f"(std {spread:.2f}) over {len(differences)} paired seeds; {better} ahead in "
        f"{wins} of {len(differences)}."
    )


def machine_line() -> str:
    """The load average at the end of a benchmark (other work may have shared it)."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"Machine: load average (1, 5, 15 min) at the end {load}; other work shared it "
        "(see the closing note of the commit that added this file)."
    )
