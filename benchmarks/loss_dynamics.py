"""Training dynamics of the RMLC loss from random weights: the collapse and its remedies.

Trains the small CNN on the embedded fashion-mosaic set with each loss variant (same seed,
same learning rate: the default of the ranking losses), logging every few steps where the
batch sits on the ramp (:func:`rmlc.losses.dynamics.ramp_statistics`), and plots it.

    python benchmarks/loss_dynamics.py [--epochs 4] [--jobs 2] [--out results]

writes ``dynamics.csv`` (every logged step of every variant), ``dynamics.png`` and
``dynamics.md`` (final test metrics and provenance) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

VARIANTS = {
    "paper (RMLCLoss.paper())": {"loss": "rmlc-paper"},
    "authors' soft ramp (beta 0.9)": {
        "loss": "rmlc-paper",
        "loss_params": {"ramp_beta": 0.9, "rounding": "round"},
    },
    "balanced margin": {"loss": "rmlc-paper", "loss_params": {"balance_margin": True}},
    "hinge warm start (1 epoch)": {"loss": "rmlc-paper", "loss_params": {"hinge_steps": 38}},
    # the recommended loss when results/dynamics.md was made (the ramp at half; since
    # issue 25 RMLCLoss() keeps the hinge throughout)
    "recommended until issue 25": {"loss": "rmlc", "ramp_start": 0.5},
    "WARP": {"loss": "warp"},
}
PANELS = (
    ("positive_flat", "positives on the margin's flat part (f <= s)"),
    ("positive_above_zero", "positives scored above 0"),
    ("pair_flat", "pairs on the ranking ramp's flat part"),
    ("positive_mean", "mean score of positives"),
    ("negative_mean", "mean score of negatives"),
    ("margin_grad_norm", "margin term's gradient norm"),
)


def train_variant(job: tuple[str, dict, int, int, int]) -> tuple[str, list[dict], dict]:
    """Train one variant; returns its dynamics records and test metrics."""
    name, settings, epochs, every, threads = job
    import torch

    torch.set_num_threads(threads)
    from rmlc.train import TrainConfig, build_trainer

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            **settings,
            lr=0.002,
            width=16,
            epochs=epochs,
            seed=0,
            dynamics_every=every,
            out=folder,
            progress=False,
            tensorboard=False,
        )
        trainer = build_trainer(config)
        metrics = trainer.fit()
    return name, trainer.dynamics, {key: metrics[key] for key in ("mAP", "R-C", "F1-C")}


def plot(records: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, (key, title) in zip(axes.flat, PANELS, strict=True):
        for name, rows in records.items():
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=name, lw=1.3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(
        "RMLC from random weights, fashion-mosaic, small CNN (width 16), lr 0.002, seed 0",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=4, help="steps between records")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    import os

    from rmlc.provenance import provenance, provenance_markdown

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    jobs = [(name, s, args.epochs, args.every, threads) for name, s in VARIANTS.items()]
    with ProcessPoolExecutor(args.jobs, get_context("spawn")) as pool:
        finished = list(pool.map(train_variant, jobs))
    records = {name: rows for name, rows, _ in finished}
    stream = io.StringIO()
    fields = ["variant", *finished[0][1][0]]
    writer = csv.DictWriter(stream, fieldnames=fields)
    writer.writeheader()
    for name, rows, _ in finished:
        writer.writerows({"variant": name, **row} for row in rows)
    (out / "dynamics.csv").write_text(stream.getvalue())
    plot(records, out / "dynamics.png")
    command = f"python benchmarks/loss_dynamics.py --epochs {args.epochs} --every {args.every}"
    lines = [
        "# Training dynamics of RMLC from random weights",
        "",
        "Test metrics after the run (one seed, the same learning rate for every variant: "
        "a picture of the dynamics, not a comparison; see `remedies.md` for that):",
        "",
        "| variant | mAP | R-C | F1-C |",
        "|---|---|---|---|",
    ]
    for name, _, metrics in finished:
        lines.append(
            f"| {name} | {metrics['mAP']:.2f} | {metrics['R-C']:.2f} | {metrics['F1-C']:.2f} |"
        )
    lines += ["", "![dynamics](dynamics.png)", "", "## Provenance", ""]
    lines += provenance_markdown(provenance(command))
    (out / "dynamics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
