"""Decoding cost of a web photo: one CPU core, JPEG bytes to a 224 px training tensor.

Run from the repository root (under a minute):

    python benchmarks/bench_decode.py [--images 200] [--out DIR]

Open Images photos are JPEGs of about 1024 x 768 px. No such photos exist on this machine,
so the images are made from real ones: Fashion-MNIST items tiled into a 1024 x 768 RGB
collage (each item upscaled, tinted, with sensor-like noise so the JPEG is not trivially
compressible), encoded at quality 90. Each is decoded from bytes in memory (as a shard
member is) with PIL, converted to RGB and resized to 224 x 224, in one thread. This is the
per-core rate the Open Images plan (docs/scale.md) divides by. Writes ``decode-cpu.md``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import provenance_section
from rmlc.atomic import atomic_write_text
from rmlc.data import load_fashion_mnist

WIDTH, HEIGHT, SIDE = 1024, 768, 224


def photo_like_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """``count`` JPEG-encoded 1024 x 768 collages of real Fashion-MNIST images."""
    images, _ = load_fashion_mnist("train", source="embedded")
    rng = np.random.default_rng(seed)
    encoded = []
    for _ in range(count):
        canvas = np.zeros((HEIGHT, WIDTH, 3), dtype=np.float32)
        for row in range(0, HEIGHT, 256):
            for column in range(0, WIDTH, 256):
                item = Image.fromarray(images[rng.integers(len(images))].reshape(28, 28))
                tile = np.asarray(item.resize((256, 256), Image.BICUBIC), dtype=np.float32)
                canvas[row : row + 256, column : column + 256] = tile[..., None] * rng.uniform(
                    0.5, 1.0, size=3
                )
        canvas += rng.normal(0, 6, size=canvas.shape)
        buffer = io.BytesIO()
        Image.fromarray(canvas.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        encoded.append(buffer.getvalue())
    return encoded


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    jpegs = photo_like_jpegs(args.images)
    rates = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for data in jpegs:
            decode(data)
        rates.append(len(jpegs) / (time.perf_counter() - started))
    size = statistics.mean(len(data) for data in jpegs) / 1024
    text = "\n".join(
        [
            "# Decoding a web-photo-sized JPEG on one CPU core",
            "",
            f"{args.images} JPEGs of {WIDTH} x {HEIGHT} px (quality 90, {size:.0f} KiB on "
            "average; collages of real Fashion-MNIST images with noise), decoded from memory "
            f"with PIL, to RGB, resized to {SIDE} x {SIDE}; one thread; {args.rounds} rounds.",
            "",
            f"- images per second per core: **{max(rates):.0f}** best round, "
            f"{statistics.median(rates):.0f} median",
            f"- milliseconds per image: {1e3 / max(rates):.1f}",
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "decode-cpu.md"
    atomic_write_text(text + provenance_section("cpu"), path)
    print(path.read_text())


if __name__ == "__main__":
    main()
