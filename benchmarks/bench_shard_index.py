"""Indexing a shard folder at an Open-Images-sized label space: time and memory per sample.

Run from the repository root (a few minutes on 2 CPU cores):

    python benchmarks/bench_shard_index.py [--samples 100000] [--classes 20000]
        [--per-shard 1000] [--out DIR]

Writes ``--samples`` images (one tiny PNG, stored once per sample) and a tags table of
``--classes`` labels, about 8 labels per image, packs them with
:func:`rmlc.data.write_shards`, then measures :func:`rmlc.data.read_shards`, the index
every process builds when it trains from the folder (``rmlc train --train <folder>``): the
peak memory of a fresh child process during the call (``VmHWM``, restarted just before it;
Linux) above its size just before, what the index still holds after it (resident size),
and the seconds; from the shards' indexes, then again with the indexes left out of the
manifest (a folder written before they existed: the tars are scanned). Per sample, the
figures the Open Images plan in ``docs/scale.md`` extrapolates from. Writes
``shard-index-cpu.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import provenance_section
from rmlc.atomic import atomic_write_text
from rmlc.data import write_shards
from rmlc.data.shards import MANIFEST

POSITIVES = 8
MIB = 2**20

_READ = f"""
import gc, json, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from _timing import restart_peak_memory, process_memory
from rmlc.data import read_shards
before = restart_peak_memory()
started = time.perf_counter()
shards = read_shards(sys.argv[1])
seconds = time.perf_counter() - started
peak = process_memory("VmHWM") - before
gc.collect()
held = process_memory("VmRSS") - before
print(json.dumps({{"peak": peak, "held": held, "seconds": seconds, "samples": len(shards)}}))
"""


def write_folder(folder: Path, samples: int, classes: int, per_shard: int) -> float:
    """Images, a tags table and its shards in ``folder``; returns the seconds of packing."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buffer, format="PNG")
    png = buffer.getvalue()
    images = folder / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    names = [f"class{j:05d}" for j in range(classes)]
    with open(folder / "tags.csv", "w") as table:
        table.write("image,labels\n")
        for i in range(samples):
            path = images / f"{i:08d}.png"
            path.write_bytes(png)
            chosen = rng.choice(classes, POSITIVES, replace=False)
            table.write(f"images/{path.name},{' '.join(names[j] for j in chosen)}\n")
    started = time.perf_counter()
    write_shards(folder / "tags.csv", folder / "shards", samples_per_shard=per_shard)
    return time.perf_counter() - started


def read_in_child(folder: Path) -> dict:
    """``read_shards(folder)`` in a fresh process: its peak and held memory and seconds."""
    output = subprocess.run(
        [sys.executable, "-c", _READ, str(folder)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=20_000)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        packing = write_folder(folder, args.samples, args.classes, args.per_shard)
        indexed = read_in_child(folder / "shards")
        manifest = json.loads((folder / "shards" / MANIFEST).read_text())
        for entry in manifest["shards"]:
            del entry["index"], entry["index_bytes"]
        (folder / "shards" / MANIFEST).write_text(json.dumps(manifest))
        scanned = read_in_child(folder / "shards")
    assert indexed["samples"] == scanned["samples"] == args.samples
    per_sample = {key: indexed[key] / args.samples for key in ("peak", "held", "seconds")}
    scan_sample = {key: scanned[key] / args.samples for key in ("peak", "held", "seconds")}
    lines = [
        "# Indexing a shard folder (CPU)",
        "",
        f"{args.samples:,} samples in shards of {args.per_shard:,}, {args.classes:,} classes, "
        f"{POSITIVES} labels per sample (one 8x8 PNG each); packing took {packing:.1f} s.",
        "",
        "| read_shards | from the indexes: total | per sample | scanning the tars: total | "
        "per sample |",
        "|---|---|---|---|---|",
        f"| peak memory above the process before | {indexed['peak'] / MIB:,.0f} MiB | "
        f"{per_sample['peak']:,.0f} B | {scanned['peak'] / MIB:,.0f} MiB | "
        f"{scan_sample['peak']:,.0f} B |",
        f"| held after (the index) | {indexed['held'] / MIB:,.0f} MiB | "
        f"{per_sample['held']:,.0f} B | {scanned['held'] / MIB:,.0f} MiB | "
        f"{scan_sample['held']:,.0f} B |",
        f"| seconds | {indexed['seconds']:.1f} | {1e6 * per_sample['seconds']:.0f} us | "
        f"{scanned['seconds']:.1f} | {1e6 * scan_sample['seconds']:.0f} us |",
        "",
        f"Extrapolated ×{9_000_000 / args.samples:g} to 9,000,000 samples (Open Images), per "
        f"process: peak {9e6 * per_sample['peak'] / 2**30:.1f} GiB, held "
        f"{9e6 * per_sample['held'] / 2**30:.1f} GiB, {9e6 * per_sample['seconds']:.0f} s "
        f"from the indexes ({9e6 * scan_sample['seconds']:.0f} s scanning the tars).",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "shard-index-cpu.md"
    atomic_write_text("\n".join(lines) + provenance_section("cpu"), path)
    print(path.read_text())


if __name__ == "__main__":
    main()
