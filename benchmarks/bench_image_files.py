"""Training from image files against training from memory, and the loader against a
ResNet-50 step at 224 px.

Run from the repository root (about 10 minutes on 2 CPU cores):

    python benchmarks/bench_image_files.py [--images 3000] [--rounds 2] [--out DIR]

Part 1 writes ``--images`` 56x56 RGB PNG mosaics of real Fashion-MNIST images and a tags
table, then trains the small CNN on them four ways, interleaved over ``--rounds`` rounds:

- in memory: the same files decoded once into a uint8 array (the same images, size and
  network as the files);
- files, defaults: ``rmlc train`` on the tags table at its defaults (decoding workers by the
  CPU count, the images' own size);
- files, no workers: ``num_workers=0``, every file decoded in the training process;
- files + cache: ``image_cache``: the first epoch decodes and fills the cache, the timed
  epochs read it.

Images/s is over the epochs after the first; "paired" is the median over rounds of the
ratio to "in memory" in the same round. Target: the tags-table defaults at least 0.8x in
memory.

Part 2: the data loader alone over the same files resized to 224 px (default workers), and
a ResNet-50 training step (batch 16, 224 px, SGD) from random weights. Target: the loader
delivers at least the step's rate. Writes ``image-files-cpu.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader

from _timing import provenance_section
from rmlc.data import FASHION_MNIST_CLASSES, load_embedded_fashion_mnist, make_mosaics
from rmlc.train import TrainConfig, build_trainer
from rmlc.train.data import FileStore, ImageView, assemble
from rmlc.train.loading import decoding_workers
from rmlc.train.trainer import Trainer

SIDE = 56


def write_table(folder: Path, count: int, seed: int) -> tuple[Path, list[Path], np.ndarray]:
    """``count`` RGB PNG mosaics under ``folder/images`` and their tags table."""
    images, labels = load_embedded_fashion_mnist("train")
    mosaics, targets = make_mosaics(images, labels, count, seed=seed, num_classes=10)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows, paths = ["image,labels"], []
    for index, (mosaic, target) in enumerate(zip(mosaics, targets, strict=True)):
        relative = f"images/{index:05d}.png"
        Image.fromarray(mosaic[0]).convert("RGB").save(folder / relative)
        paths.append(folder / relative)
        rows.append(
            f"{relative},{'|'.join(FASHION_MNIST_CLASSES[j] for j in np.flatnonzero(target))}"
        )
    table = folder / "train.csv"
    table.write_text("\n".join(rows) + "\n")
    return table, paths, targets


def throughput(trainer: Trainer) -> float:
    """Training images/s over the epochs after the first."""
    trainer.fit()
    epochs = trainer.history[1:] or trainer.history
    return sum(r["images"] for r in epochs) / sum(r["seconds"] for r in epochs)


def part_one(folder: Path, count: int, rounds: int, epochs: int) -> tuple[list[str], dict]:
    table, paths, targets = write_table(folder, count, seed=1)
    store = FileStore(paths, None, SIDE)
    pixels = torch.stack([store[row] for row in range(len(paths))])  # the same decoded images
    common = dict(
        epochs=epochs, progress=False, tensorboard=False, device="cpu", validation_fraction=0.1
    )
    tags = dict(dataset="tags", train=str(table), image_root=str(folder))

    def in_memory(out: Path) -> Trainer:
        from rmlc.train.data import ArrayStore

        config = TrainConfig(**common, dataset="arrays", out=str(out))
        data = assemble(
            ArrayStore(pixels), targets, np.arange(count), np.arange(0), None,
            list(FASHION_MNIST_CLASSES), config,
        )  # fmt: skip
        return build_trainer(config, data=data)

    settings = {
        "in memory": in_memory,
        "files, defaults": lambda out: build_trainer(TrainConfig(**common, **tags, out=str(out))),
        "files, no workers": lambda out: build_trainer(
            TrainConfig(**common, **tags, num_workers=0, out=str(out))
        ),
        "files + cache": lambda out: build_trainer(
            TrainConfig(**common, **tags, image_cache=str(out / "cache"), out=str(out))
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in settings}
    workers = None
    for round_index in range(rounds):
        for name, make in settings.items():
            trainer = make(folder / f"run-{round_index}-{name.replace(' ', '')}")
            if name == "files, defaults":
                workers = decoding_workers(trainer.config.num_workers, trainer.data.train)
            rates[name].append(throughput(trainer))
            print(f"round {round_index}: {name} {rates[name][-1]:.0f} images/s", flush=True)
    memory = rates["in memory"]
    lines = [
        f"## Small CNN at {SIDE} px: {count} PNG files against the same images in memory",
        "",
        f"{epochs} epochs per run (the first not timed), {rounds} interleaved rounds, batch 96, "
        f"{torch.get_num_threads()} torch threads; default decoding workers here: {workers}.",
        "",
        "| setting | images/s (best round) | vs in memory (best) | paired (median ratio) |",
        "|---|---|---|---|",
    ]
    for name, values in rates.items():
        paired = statistics.median(v / m for v, m in zip(values, memory, strict=True))
        lines.append(
            f"| {name} | {max(values):.0f} | {max(values) / max(memory):.2f}x | {paired:.2f}x |"
        )
    return lines, {"paths": paths}


def part_two(paths: list[Path], batch: int, steps: int) -> list[str]:
    store = FileStore(paths, None, 224)
    view = ImageView(store)
    workers = decoding_workers(TrainConfig(device="cpu").num_workers, view)
    loader = DataLoader(view, batch_size=batch, num_workers=workers, shuffle=True)
    images_needed = batch * (steps + 2) * 4
    started, seen = None, 0
    for index, (images, _) in enumerate(loader):
        if index == 1:  # the first batch pays for starting the workers
            started = time.perf_counter()
        elif index > 1:
            seen += len(images)
        if seen >= images_needed:
            break
    loader_rate = seen / (time.perf_counter() - started)

    model = torchvision.models.resnet50(num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    inputs = torch.randn(batch, 3, 224, 224)
    targets = torch.randint(0, 2, (batch, 10)).float()
    step_seconds = []
    for step in range(steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            step_seconds.append(time.perf_counter() - started)
    step_rate = batch / statistics.median(step_seconds)
    return [
        "## ResNet-50 at 224 px: the data loader alone against the training step",
        "",
        f"Loader: the same PNG files resized to 224 px, batch {batch}, {workers} decoding "
        f"worker(s) (the default here), {seen} images after the first batch. Step: ResNet-50 "
        f"from random weights, batch {batch}, BCE, SGD with momentum, median of {steps} steps "
        "after one warm-up step.",
        "",
        "| | images/s |",
        "|---|---|",
        f"| data loader alone | {loader_rate:.1f} |",
        f"| ResNet-50 training step | {step_rate:.1f} |",
        f"| loader / step | {loader_rate / step_rate:.1f}x |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resnet-steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        first, shared = part_one(folder, args.images, args.rounds, args.epochs)
        second = part_two(shared["paths"], batch=16, steps=args.resnet_steps)
    lines = ["# Training from image files on CPU", "", *first, "", *second, ""]
    text = "\n".join(lines) + provenance_section("cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "image-files-cpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
