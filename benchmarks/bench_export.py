"""Images per second of an exported ONNX file under onnxruntime against rmlc's own inference.

Run from the repository root (``pip install -e '.[export]'``):

    nice python benchmarks/bench_export.py [--threads 1 2] [--rounds 5] [--out DIR]

Two networks with random weights (speed does not depend on them), each saved as a
checkpoint and exported with :func:`rmlc.export.export_onnx`: the small CNN of ``rmlc
train`` (width 16, greyscale 56 x 56, 10 classes) and a ResNet-18 (RGB 64 x 64, 80 classes).
On the same uint8 images, already decoded and resized, at batch 1 and 64, each round times,
interleaved: **rmlc** ``TrainedModel.scores`` (what ``rmlc predict`` runs after decoding: a
DataLoader over the images, normalisation, the network), **torch forward** (normalisation
and the network alone, under ``torch.inference_mode``) and **onnxruntime** (the exported
graph, normalisation inside). torch and onnxruntime get the same number of threads, each
of ``--threads`` in turn (onnxruntime's inter-op pool 1). Reported: the median images/s over rounds,
their spread (lowest and highest round), and the median over rounds of onnxruntime's
throughput divided by rmlc's in the same round (paired). Writes ``export.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from _timing import provenance_section, time_interleaved
from rmlc.export import export_onnx
from rmlc.models import build_model
from rmlc.train.trained import TrainedModel

NETWORKS = {  # name -> (backbone, channels, side, classes, build_model options)
    "small-cnn": ("small-cnn", 1, 56, 10, {"width": 16}),
    "resnet18": ("resnet18", 3, 64, 80, {}),
}
BATCHES = (1, 64)


def make_checkpoint(name: str, folder: Path) -> Path:
    """A checkpoint of a randomly initialised network, as ``TrainedModel.save`` writes it."""
    backbone, channels, side, classes, options = NETWORKS[name]
    torch.manual_seed(0)
    model = build_model(backbone, classes, in_channels=channels, **options).eval()
    trained = TrainedModel(
        model=model,
        class_names=[f"tag{j}" for j in range(classes)],
        normalization={"mean": [0.5] * channels, "std": [0.25] * channels, "size": side},
        in_channels=channels,
        single_label=False,
        config=dict(options),
    )
    path = folder / f"{name}.pt"
    trained.save(path)
    return path


def measure(name: str, folder: Path, thread_counts: list[int], rounds: int) -> list[dict]:
    """Rows of images/s per thread count, batch size and runtime."""
    from rmlc.inference import load_trained_model

    checkpoint = make_checkpoint(name, folder)
    export = export_onnx(checkpoint, folder / f"{name}.onnx")
    trained = load_trained_model(checkpoint)
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        rows += measure_threads(name, trained, export.path, threads, rounds)
    return rows


def measure_threads(
    name: str, trained: TrainedModel, path: Path, threads: int, rounds: int
) -> list[dict]:
    """Rows of images/s (median, lowest, highest round) per batch size and runtime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    _, channels, side, _, _ = NETWORKS[name]
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (max(BATCHES), channels, side, side), generator=generator)
    images = images.to(torch.uint8)
    expected = trained.scores(images)
    difference = np.abs(session.run(None, {"images": images.numpy()})[0] - expected)
    rows = []
    for batch in BATCHES:
        pixels, array = images[:batch], images[:batch].numpy()

        def forward(pixels: torch.Tensor = pixels) -> None:
            with torch.inference_mode():
                trained.model(trained.prepare(pixels))

        functions = {
            "rmlc": lambda pixels=pixels, b=batch: trained.scores(pixels, batch_size=b),
            "torch forward": forward,
            "onnxruntime": lambda array=array: session.run(None, {"images": array}),
        }
        repeats = dict.fromkeys(functions, max(1, 4 // batch))
        samples = time_interleaved(functions, rounds, repeats, keep_samples=True)
        rates = {key: [batch / seconds for seconds in values] for key, values in samples.items()}
        paired = statistics.median(
            o / r for o, r in zip(rates["onnxruntime"], rates["rmlc"], strict=True)
        )
        for runtime, values in rates.items():
            rows.append(
                {
                    "network": name,
                    "threads": threads,
                    "batch": batch,
                    "runtime": runtime,
                    "median": statistics.median(values),
                    "low": min(values),
                    "high": max(values),
                    "paired": paired if runtime == "onnxruntime" else None,
                    "difference": float(difference.max()),
                    "scale": float(np.abs(expected).max()),
                }
            )
    return rows


def load() -> str:
    """``uptime``'s line: how busy the machine was."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def report(rows: list[dict], rounds: int, loads: tuple[str, str]) -> str:
    versions = ", ".join(
        f"{package} {importlib.metadata.version(package)}"
        for package in ("onnx", "onnxruntime", "onnxscript")
    )
    lines = [
        "# Serving: onnxruntime against rmlc's own inference on CPU",
        "",
        "Images already decoded and resized (uint8), random weights; torch and onnxruntime "
        f"with the same number of threads; {rounds} interleaved rounds. images/s: median round "
        "(lowest-highest round). 'paired': median over rounds of onnxruntime's images/s "
        "divided by rmlc's in the same round. 'rmlc' is `TrainedModel.scores` (what "
        "`rmlc predict` runs after decoding); 'torch forward' is normalisation and the network "
        f"alone. Exported by `rmlc.export.export_onnx` (opset 18); {versions}.",
        "",
        "| network | threads | batch | runtime | images/s | spread | paired vs rmlc |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        paired = "" if row["paired"] is None else f"{row['paired']:.2f}x"
        lines.append(
            f"| {row['network']} | {row['threads']} | {row['batch']} | {row['runtime']} | "
            f"{row['median']:,.0f} | {row['low']:,.0f}-{row['high']:,.0f} | {paired} |"
        )
    lines += ["", "Largest |onnxruntime - rmlc| score on the 64 images:", ""]
    for name in NETWORKS:
        row = next(r for r in rows if r["network"] == name)
        lines.append(f"- {name}: {row['difference']:.2g} (largest |score| {row['scale']:.3g})")
    lines += ["", f"Machine load (`uptime`; this process ran at niceness {os.nice(0)}):", ""]
    lines += [f"- before: `{loads[0]}`", f"- after: `{loads[1]}`"]
    return "\n".join(lines) + "\n" + provenance_section("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts, each in turn"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    before = load()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in NETWORKS:
            rows += measure(name, Path(folder), args.threads, args.rounds)
    text = report(rows, args.rounds, (before, load()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "export.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
