"""RMLClassifier against scikit-learn's one-vs-rest linear classifiers on fixed features.

Run from the repository root:

    python benchmarks/bench_linear.py [--part speed|real|all] [--seeds 3] [--quick]

(a) speed: 100k x 512 synthetic features, 80 labels with label structure (a few latent
    "scenes" switch correlated labels on), fit time and test metrics.
(b) real: fashion-mosaic features (raw pixels, and the penultimate layer of a small CNN
    trained with BCE on the clean labels: ``--features-checkpoint``), with 0%, 30% and 50% of
    the training label vectors corrupted by the paper's protocol; test labels are clean.

Each method chooses, on a validation split (20% of the training set, corrupted like the rest),
between standardized and whitened features (``whiten=1e-3``: RMLClassifier's own option; a
pipeline step with the same transform for the baselines) and among three values of its main
parameter (four for logistic regression, whose choices sat at both ends of a 3-value grid):
6, 6 and 8 fits. Writes ``benchmarks/results/linear-<part>.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _timing import provenance_section
from rmlc.data import corrupt_labels, fashion_mosaic, load_features
from rmlc.linear import RMLClassifier, whitening_matrix
from rmlc.metrics import mean_average_precision, topk_metrics

RESULTS = Path("benchmarks/results")


def structured_features(n: int, d: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels where latent scenes turn on correlated groups of labels."""
    rng = np.random.default_rng(seed)
    scenes = 12
    scene_labels = rng.random((scenes, m)) < 4 / m
    label_directions = rng.normal(size=(m, d)) / np.sqrt(d)
    scene_of = rng.integers(scenes, size=n)
    targets = scene_labels[scene_of] | (rng.random((n, m)) < 0.01)
    targets[targets.sum(axis=1) == 0, rng.integers(m)] = True
    features = targets.astype(np.float32) @ label_directions * 3.0
    features += rng.normal(size=(n, d)).astype(np.float32)
    return features.astype(np.float32), targets.astype(np.int64)


WHITEN = 1e-3


class Whitener(TransformerMixin, BaseEstimator):
    """The baselines' whitening step: RMLClassifier's transform on standardized features."""

    def __init__(self, ridge: float = WHITEN) -> None:
        self.ridge = ridge

    def fit(self, X, y=None):
        self.mean_ = X.mean(axis=0)
        self.matrix_ = whitening_matrix(X, self.ridge)
        return self

    def transform(self, X):
        return ((X - self.mean_) @ self.matrix_).astype(np.float32)


def baseline(classifier, whiten: float | None):
    steps = [StandardScaler()] + ([Whitener(whiten)] if whiten is not None else [])
    return make_pipeline(*steps, OneVsRestClassifier(classifier, n_jobs=2))


def methods(seed: int) -> dict[str, tuple[object, str, list[tuple[float | None, float]]]]:
    """name -> (factory of (whiten, value), tuned parameter, grid of (whiten, value))."""
    return {
        # The paper's RMLC, the estimator's default (the results files before the loss
        # registry call this row "RMLClassifier (rmlc)": the same loss under its old name).
        "RMLClassifier (rmlc-paper)": (
            lambda whiten, value: RMLClassifier(
                loss="rmlc-paper",
                whiten=whiten,
                learning_rate=value,
                max_epochs=20,
                random_state=seed,
            ),
            "learning_rate",
            # Whitened features take smaller steps: every direction has unit variance.
            [(None, lr) for lr in (0.0003, 0.001, 0.003)]
            + [(WHITEN, lr) for lr in (1e-5, 3e-5, 1e-4)],
        ),
        "OvR SGDClassifier (hinge)": (
            lambda whiten, value: baseline(
                SGDClassifier(loss="hinge", alpha=value, max_iter=20, tol=1e-4, random_state=seed),
                whiten,
            ),
            "alpha",
            [(whiten, alpha) for whiten in (None, WHITEN) for alpha in (1e-5, 1e-4, 1e-3)],
        ),
        "OvR LogisticRegression": (
            lambda whiten, value: baseline(LogisticRegression(C=value, max_iter=100), whiten),
            "C",
            [(whiten, c) for whiten in (None, WHITEN) for c in (0.01, 0.1, 1.0, 10.0)],
        ),
    }


def describe(parameter: str, choice: tuple[float | None, float]) -> str:
    whiten, value = choice
    return ("whitened " if whiten is not None else "") + f"{parameter}={value:g}"


def scores_of(model, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.decision_function(X), dtype=np.float64)


def evaluate(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    s, t = torch.from_numpy(scores), torch.from_numpy(targets.astype(np.float32))
    return {"mAP": mean_average_precision(s, t), **topk_metrics(s, t, k=3)}


def fit_tuned(factory, grid, X, Y, X_val, Y_val):
    """Fit each grid choice, keep the best validation mAP; time the chosen value's fit."""
    best = None
    for value in grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            model = factory(*value).fit(X, Y)
            seconds = time.perf_counter() - started
        validation = mean_average_precision(
            torch.from_numpy(scores_of(model, X_val)), torch.from_numpy(Y_val.astype(np.float32))
        )
        if best is None or validation > best[0]:
            best = (validation, value, model, seconds)
    return best


def run_setting(
    X, Y, X_test, Y_test, seed: int, noise: float, only: list[str] | None = None
) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    cut = int(0.8 * len(X))
    train, validation = order[:cut], order[cut:]
    noisy = corrupt_labels(Y, noise, seed=seed) if noise > 0 else Y
    results = {}
    for name, (factory, parameter, grid) in methods(seed).items():
        if only and name not in only:
            continue
        _, value, model, seconds = fit_tuned(
            factory, grid, X[train], noisy[train], X[validation], noisy[validation]
        )
        results[name] = {
            "seconds": seconds,
            "parameter": describe(parameter, value),
            **evaluate(scores_of(model, X_test), Y_test),
        }
    return results


def summarise(runs: list[dict[str, dict]]) -> dict[str, dict[str, str]]:
    table = {}
    for name in runs[0]:
        row = {}
        for key in ("mAP", "F1-C", "F1-O", "seconds"):
            values = [run[name][key] for run in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            row[key] = f"{statistics.mean(values):.2f} ± {spread:.2f}"
        row["chosen"] = ", ".join(sorted({run[name]["parameter"] for run in runs}))
        table[name] = row
    return table


def render(title: str, rows: dict[str, dict[str, str]]) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| method | mAP | F1-C | F1-O | fit seconds | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['mAP']} | {row['F1-C']} | {row['F1-O']} | {row['seconds']} "
            f"| {row['chosen']} |"
        )
    return [*lines, ""]


def speed_part(seeds: int, quick: bool) -> list[str]:
    """Tune each method on a 20k subsample (3 values), then time its chosen fit on all n."""
    n = 20_000 if quick else 100_000
    runs = []
    for seed in range(seeds):
        X, Y = structured_features(n + 10_000, 512, 80, seed)
        X_test, Y_test = X[n:], Y[n:]
        tune = np.random.default_rng(seed).permutation(n)[:20_000]
        cut = 16_000
        results = {}
        for name, (factory, parameter, grid) in methods(seed).items():
            _, value, _, _ = fit_tuned(
                factory, grid, X[tune[:cut]], Y[tune[:cut]], X[tune[cut:]], Y[tune[cut:]]
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                started = time.perf_counter()
                model = factory(*value).fit(X[:n], Y[:n])
                seconds = time.perf_counter() - started
            results[name] = {
                "seconds": seconds,
                "parameter": describe(parameter, value),
                **evaluate(scores_of(model, X_test), Y_test),
            }
        runs.append(results)
    return render(
        f"(a) {n} x 512 synthetic features, 80 labels, {seeds} seed(s); parameters chosen on "
        "a 20k subsample, fit timed on all of it",
        summarise(runs),
    )


def real_part(
    seeds: int, quick: bool, checkpoint: Path | None, only: list[str] | None = None
) -> list[str]:
    images, targets = fashion_mosaic("train", source="embedded", seed=0)
    test_images, test_targets = fashion_mosaic("test", source="embedded", seed=0)
    feature_sets = {
        "pixels": (
            images.reshape(len(images), -1).astype(np.float32) / 255,
            test_images.reshape(len(test_images), -1).astype(np.float32) / 255,
        )
    }
    if checkpoint is not None:
        train_file = checkpoint.parent / "features-train.npz"
        test_file = checkpoint.parent / "features-test.npz"
        if train_file.is_file() and test_file.is_file():
            feature_sets["CNN features (BCE small CNN)"] = (
                load_features(train_file)[0],
                load_features(test_file)[0],
            )
    lines = []
    for name, (X, X_test) in feature_sets.items():
        if quick:
            X, Y = X[:1000], targets[:1000]
        else:
            Y = targets
        for noise in (0.0, 0.3, 0.5):
            runs = [
                run_setting(X, Y, X_test, test_targets, seed, noise, only) for seed in range(seeds)
            ]
            lines += render(
                f"(b) fashion-mosaic, {name}, {int(noise * 100)}% corrupted label vectors, "
                f"{seeds} seeds",
                summarise(runs),
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["speed", "real", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--speed-seeds", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="run only these methods of the real part (names as in the tables); the "
        "report then goes to linear-real-subset.md",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--features-checkpoint",
        type=Path,
        default=None,
        help="folder's best.pt whose features-{train,test}.npz to use",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        "# Linear classifiers on fixed features",
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        "budget: standardized or whitened features x 3 values of the main parameter (4 for "
        "logistic regression), chosen on a validation split.",
        "",
    ]
    if args.part in ("speed", "all"):
        lines += speed_part(args.speed_seeds, args.quick)
    if args.part in ("real", "all"):
        lines += real_part(args.seeds, args.quick, args.features_checkpoint, args.methods)
    text = "\n".join(lines) + "\n" + provenance_section()
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("-subset" if args.methods else "") + ("-quick" if args.quick else "")
    (RESULTS / f"linear-{args.part}{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
