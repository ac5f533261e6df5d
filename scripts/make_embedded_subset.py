"""Build the Fashion-MNIST subset embedded in rmlc (``src/rmlc/data/embedded``).

Selects, with a fixed seed, exactly 600 training images per class from the 60,000-image
training file and 100 test images per class from the 10,000-image test file of the
original Fashion-MNIST IDX gzip files (Debian package ``dataset-fashion-mnist``, folder
``/usr/share/datasets/fashion-mnist``), and writes

* ``fashion_mnist_subset.npz`` (``np.savez_compressed``; zip timestamps normalised so that
  the file is byte-for-byte reproducible) with arrays ``train_images`` uint8
  ``(6000, 28, 28)``, ``train_labels`` int64 ``(6000,)``, ``train_indices`` int64 (row of
  each image in the source file), ``test_images`` ``(1000, 28, 28)``, ``test_labels``,
  ``test_indices``;
* ``LICENSE-fashion-mnist.txt``: the MIT licence of Fashion-MNIST with attribution and
  the SHA-256 of the source files.

Usage::

    python scripts/make_embedded_subset.py            # (re)write the files
    python scripts/make_embedded_subset.py --check    # verify the committed files
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from rmlc.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST_ROOT,
    EMBEDDED_SUBSET_FILE,
    FASHION_MNIST_CLASSES,
    fashion_mnist_files,
)
from rmlc.data.idx import read_idx_pair

SEED = 20170825  # Fashion-MNIST's release date
PER_CLASS = {"train": 600, "test": 100}
MAX_BYTES = 5 * 1024 * 1024
LICENSE_FILE = "LICENSE-fashion-mnist.txt"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src" / "rmlc" / "data" / "embedded"

MIT_TEXT = """\
The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def select_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` images of each class, drawn without replacement."""
    chosen = []
    for label in range(len(FASHION_MNIST_CLASSES)):
        pool = np.flatnonzero(labels == label)
        if pool.size < per_class:
            raise ValueError(f"class {label} has only {pool.size} images, need {per_class}")
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def build_arrays(root: Path, seed: int = SEED) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Select the subset; return the arrays and the SHA-256 of each source file."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    for split, per_class in PER_CLASS.items():
        files = fashion_mnist_files(split, root)
        if files is None:
            raise FileNotFoundError(
                f"Fashion-MNIST {split} files not found in {root} "
                "(apt-get install dataset-fashion-mnist, or pass --root)"
            )
        images, labels = read_idx_pair(*files)
        for path in files:
            digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        indices = select_balanced(labels, per_class, rng)
        arrays[f"{split}_images"] = np.ascontiguousarray(images[indices], dtype=np.uint8)
        arrays[f"{split}_labels"] = labels[indices].astype(np.int64)
        arrays[f"{split}_indices"] = indices
    train = {bytes(image) for image in arrays["train_images"].reshape(6000, -1)}
    leaked = sum(bytes(image) in train for image in arrays["test_images"].reshape(1000, -1))
    if leaked:
        raise ValueError(f"{leaked} test images are pixel-identical to training images")
    return arrays, digests


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez_compressed`` output with zip timestamps fixed (reproducible bytes)."""
    raw = io.BytesIO()
    np.savez_compressed(raw, **arrays)
    raw.seek(0)
    fixed = io.BytesIO()
    with (
        zipfile.ZipFile(raw) as source,
        zipfile.ZipFile(fixed, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename), compresslevel=9)
    return fixed.getvalue()


def license_text(root: Path, seed: int, digests: dict[str, str]) -> str:
    """Licence file: attribution, provenance of the subset, then the MIT licence."""
    sources = "\n".join(f"  {name}  sha256 {digest}" for name, digest in sorted(digests.items()))
    return f"""\
Fashion-MNIST subset embedded in rmlc ({EMBEDDED_SUBSET_FILE})
=====================================================================

Fashion-MNIST is a dataset of Zalando's article images by Zalando Research
(Han Xiao, Kashif Rasul and Roland Vollgraf, "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017),
https://github.com/zalandoresearch/fashion-mnist, released under the MIT
licence reproduced below.

This file holds a subset of the original images and labels, unmodified:
{PER_CLASS["train"]} training images per class (6,000) from train-images-idx3-ubyte.gz and
{PER_CLASS["test"]} test images per class (1,000) from t10k-images-idx3-ubyte.gz, chosen
with numpy.random.default_rng({seed}) by scripts/make_embedded_subset.py
from the Debian package dataset-fashion-mnist ({root}).
The arrays train_indices / test_indices give each image's row in its source file.
Source files:
{sources}

{MIT_TEXT}"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEBIAN_FASHION_MNIST_ROOT)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="compare with existing files")
    args = parser.parse_args(argv)

    arrays, digests = build_arrays(args.root, args.seed)
    content = npz_bytes(arrays)
    if len(content) > MAX_BYTES:
        raise SystemExit(f"subset is {len(content)} bytes, over the {MAX_BYTES}-byte limit")
    text = license_text(args.root, args.seed, digests)
    npz_path = args.output / EMBEDDED_SUBSET_FILE
    license_path = args.output / LICENSE_FILE
    if args.check:
        same = npz_path.is_file() and npz_path.read_bytes() == content
        same = same and license_path.is_file() and license_path.read_text() == text
        print(f"{npz_path}: {'up to date' if same else 'DIFFERS from a fresh build'}")
        return 0 if same else 1
    args.output.mkdir(parents=True, exist_ok=True)
    npz_path.write_bytes(content)
    license_path.write_text(text)
    print(f"wrote {npz_path} ({len(content):,} bytes) and {license_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
