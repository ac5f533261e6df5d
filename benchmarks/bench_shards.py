"""Training from WebDataset shards against training from the same images as loose files.

Run from the repository root (a few minutes on 2 CPU cores):

    python benchmarks/bench_shards.py [--images 1500] [--rounds 3] [--out DIR]

Writes ``--images`` 56x56 RGB PNG mosaics of real Fashion-MNIST images and a tags table
(as ``bench_image_files.py``), packs them into shards of 250 samples with
:func:`rmlc.data.write_shards`, then trains the small CNN on them four ways, interleaved
over ``--rounds`` rounds: the tags table and the shard folder, each with the default
decoding workers and with none. Images/s is over the epochs after the first; "paired" is
the median over rounds of the ratio to the files with the same workers in the same round.
Writes ``shards-cpu.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from _timing import provenance_section
from bench_image_files import SIDE, throughput, write_table
from rmlc.data import write_shards
from rmlc.train import TrainConfig, build_trainer


def measure(folder: Path, count: int, rounds: int, epochs: int) -> list[str]:
    table, paths, _ = write_table(folder, count, seed=1)
    started = time.perf_counter()
    write_shards(table, folder / "shards", samples_per_shard=250)
    shard_seconds = time.perf_counter() - started
    file_bytes = sum(path.stat().st_size for path in paths)
    shard_bytes = sum(path.stat().st_size for path in (folder / "shards").glob("*.tar"))
    common = dict(
        dataset="tags",
        epochs=epochs,
        progress=False,
        tensorboard=False,
        device="cpu",
        validation_fraction=0.1,
    )
    sources = {"files": dict(train=str(table)), "shards": dict(train=str(folder / "shards"))}
    settings = {
        f"{source}, {workers}": (values, None if workers == "default workers" else 0)
        for workers in ("default workers", "no workers")
        for source, values in sources.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in settings}
    for round_index in range(rounds):
        for name, (values, workers) in settings.items():
            out = folder / f"run-{round_index}-{name.replace(' ', '').replace(',', '-')}"
            config = TrainConfig(**common, **values, num_workers=workers, out=str(out))
            rates[name].append(throughput(build_trainer(config)))
            print(f"round {round_index}: {name} {rates[name][-1]:.0f} images/s", flush=True)
    lines = [
        f"## Small CNN at {SIDE} px: {count} PNG files against the same images in shards",
        "",
        f"{epochs} epochs per run (the first not timed), {rounds} interleaved rounds, batch 96, "
        f"{torch.get_num_threads()} torch threads. Shards of 250 samples, written in "
        f"{shard_seconds:.1f} s (every image decoded once to check it); "
        f"{shard_bytes / 2**20:.1f} MiB of shards for {file_bytes / 2**20:.1f} MiB of files "
        "(tar adds a 512-byte header per member and pads each to 512 bytes).",
        "",
        "| setting | images/s (best round) | images/s (median) | paired vs files (median ratio) |",
        "|---|---|---|---|",
    ]
    for name, values in rates.items():
        files = rates[name.replace("shards", "files")]
        paired = statistics.median(v / f for v, f in zip(values, files, strict=True))
        lines.append(
            f"| {name} | {max(values):.0f} | {statistics.median(values):.0f} | {paired:.2f}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--note", default="", help="a line on the machine's state")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        lines = measure(Path(name), args.images, args.rounds, args.epochs)
    note = [args.note, ""] if args.note else []
    text = "\n".join(["# Training from shards on CPU", "", *note, *lines, ""])
    text += provenance_section("cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shards-cpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
