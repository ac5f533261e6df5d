"""The part of a report that budgets add (:mod:`rmlc.experiments.budgets`): each claim at
every budget, with and without early stopping, and the per-epoch curves."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from rmlc.atomic import atomic_write
from rmlc.experiments.budgets import budget_names
from rmlc.experiments.verdicts import paired_verdict
from rmlc.train.curves import on_curve_grid

__all__ = ["budget_lines", "plot_curves"]

_VERDICT_MARK = {"held": "held", "did not hold": "lost", "inconclusive": "incl."}
_CURVE_PANELS = (
    ("test_mAP", "test mAP (clean labels)"),
    ("fit_corrupted_mAP", "fit: corrupted samples, corrupted labels"),
    ("fit_clean_mAP", "fit: all training samples, clean labels"),
)
_PANEL_INCHES = (4.2, 3.0)


def _cell(runs: list[dict[str, Any]], better: str, worse: str, metric: str) -> str:
    pairs: dict[tuple, dict[str, float]] = defaultdict(dict)
    for run in runs:
        if metric in run["metrics"]:
            pairs[(run["variant"], run["seed"])][run["method"]] = run["metrics"][metric]
    differences = [v[better] - v[worse] for v in pairs.values() if better in v and worse in v]
    if not differences:
        return "–"
    verdict, _, _ = paired_verdict(differences)
    mean = statistics.fmean(differences)
    return f"{mean:+.1f} ({_VERDICT_MARK[verdict]}, {len(differences)})"


def budget_lines(spec, runs: list[dict[str, Any]], budgets: list[int]) -> list[str]:
    """Markdown: for each claim on ``mAP`` or ``F1-C``, a table of the mean paired
    difference at each budget, at the epoch the noisy validation split picks ("early
    stopping") and at the budget's last epoch, per variant and over all of them."""
    lines = ["", "## By budget", "", "Test mAP, mean ± std over seeds:"]
    lines += _means_lines(runs, budgets)
    lines += [
        "",
        "Each claim at each budget. Each cell: the mean paired difference (better − worse, "
        "points), its verdict (95% interval of the paired differences: held, lost, "
        "inconclusive) and the number of pairs. *Early stopping*: each method at the "
        "epoch its noisy validation split picks among the first B; *last*: at epoch B.",
    ]
    variants = list(dict.fromkeys(run["variant"] for run in runs))
    for claim in spec.claims:
        if claim.metric not in ("mAP", "F1-C"):
            continue
        header = ["variant"]
        for budget in budgets:
            header += [f"{budget} ep, early stopping", f"{budget} ep, last"]
        lines += [
            "",
            f"**{claim.better} − {claim.worse}** ({claim.metric})",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for variant in [*variants, "all"]:
            members = [r for r in runs if variant in ("all", r["variant"])]
            cells = [variant]
            for budget in budgets:
                names = budget_names(budget)
                for key in (claim.metric, f"last_{claim.metric}"):
                    cells.append(_cell(members, claim.better, claim.worse, names[key]))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _means_lines(runs: list[dict[str, Any]], budgets: list[int]) -> list[str]:
    """A table of test mAP (mean ± std over seeds) per method and variant at each budget,
    with early stopping and at the budget's last epoch."""
    header = ["method", "variant"]
    for budget in budgets:
        header += [f"mAP {budget} ep, early stopping", f"mAP {budget} ep, last"]
    lines = ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["method"], run["variant"])].append(run)
    for (method, variant), members in groups.items():
        cells = [method, variant]
        for budget in budgets:
            names = budget_names(budget)
            for key in ("mAP", "last_mAP"):
                values = [m["metrics"][names[key]] for m in members if names[key] in m["metrics"]]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.fmean(values):.1f} ± {spread:.1f}" if values else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_curves(spec, runs: list[dict[str, Any]], path: Path) -> None:
    """A figure: one row per variant, one column per curve (clean test mAP, the fit of
    corrupted samples to their corrupted labels, the fit to clean labels), one line per
    method (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(run["variant"] for run in runs))
    figure, axes = plt.subplots(
        len(variants),
        len(_CURVE_PANELS),
        figsize=(_PANEL_INCHES[0] * len(_CURVE_PANELS), _PANEL_INCHES[1] * len(variants)),
        squeeze=False,
    )
    for line, variant in enumerate(variants):
        for column, (key, label) in enumerate(_CURVE_PANELS):
            ax = axes[line][column]
            for method in dict.fromkeys(run["method"] for run in runs):
                series = [
                    run["metrics"]["curve"][key]
                    for run in runs
                    if run["variant"] == variant
                    and run["method"] == method
                    and key in run["metrics"].get("curve", {})
                ]
                if series:
                    epochs, mean = _mean_curve(series, spec.base.get("curve_every", 1))
                    ax.plot(epochs, mean, label=f"{method} ({len(series)})")
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("epoch")
            if column == 0:
                ax.set_ylabel(variant, fontsize=9)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(spec.title, fontsize=10)
    figure.tight_layout()
    atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=90))
    plt.close(figure)


def _mean_curve(series: list[list[float | None]], every: int = 1) -> tuple[list[int], list[float]]:
    """The epochs (1-based) of the regular grid (the first, every ``every``-th, the last)
    at which every seed's curve has a value (thinned curves skip some: ``None``), and the
    mean over seeds there. The extra epochs a thinned curve evaluates (those validation
    selected) are left out: chosen for high validation scores, they would show as blips."""
    length = min(len(values) for values in series)
    grid = [i for i in range(length) if on_curve_grid(i + 1, every, length)]
    epochs = [i for i in grid if all(values[i] is not None for values in series)]
    return [i + 1 for i in epochs], [
        statistics.fmean(values[i] for values in series) for i in epochs
    ]
