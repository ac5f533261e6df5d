"""Results of an experiment: mean ± std over seeds, the paper beside them, claims, plots."""

from __future__ import annotations

import csv
import io
import statistics
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

from rmlc.atomic import atomic_write, atomic_write_text
from rmlc.experiments.budget_report import budget_lines, plot_curves
from rmlc.experiments.runs import read_runs, trained_at
from rmlc.experiments.verdicts import paired_verdict
from rmlc.provenance import provenance_markdown

__all__ = ["aggregate", "paired_verdict", "write_report"]

_PANEL_INCHES = (4.2, 3.4)  # width, height of one plot panel
_TITLE_CHARACTERS_PER_INCH = 12  # at the title's font size 10


def _stats(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(runs: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    """One row per (variant, axis, method): mean and std of each metric over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["variant"], run["axis"], run["method"])].append(run)
    rows = []
    for (variant, axis, method), members in groups.items():
        row = {
            "variant": variant,
            "axis": axis,
            "method": method,
            "n": len(members),
            "seconds": statistics.fmean(m["seconds"] for m in members),
        }
        for metric in [*metrics, "s_in", "s_out"]:
            values = [m["metrics"][metric] for m in members if metric in m["metrics"]]
            if values:
                row[metric], row[f"{metric}_std"] = _stats(values)
        rows.append(row)
    return rows


def _by_key(runs: list[dict[str, Any]], metric: str) -> dict[tuple, dict[str, float]]:
    """metric values keyed by (variant, axis, seed), then by method."""
    by_key: dict[tuple, dict[str, float]] = defaultdict(dict)
    for run in runs:
        if metric in run["metrics"]:
            key = (run["variant"], run["axis"], run["seed"])
            by_key[key][run["method"]] = run["metrics"][metric]
    return by_key


def _paired_differences(
    runs: list[dict[str, Any]], better: str, worse: str, metric: str
) -> list[float]:
    """better - worse for every (variant, axis, seed) where both ran."""
    return [
        values[better] - values[worse]
        for values in _by_key(runs, metric).values()
        if better in values and worse in values
    ]


def _claim_lines(spec, runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for claim in spec.claims:
        differences = _paired_differences(runs, claim.better, claim.worse, claim.metric)
        if not differences:
            continue
        mean, std = _stats(differences)
        n, wins = len(differences), sum(d > 0 for d in differences)
        verdict, low, high = paired_verdict(differences)
        paper = f" (paper: {claim.paper})" if claim.paper is not None else ""
        lines.append(
            f"- {claim.text}{paper}: **{verdict}** here: {claim.better} − "
            f"{claim.worse} = {mean:+.2f} ± {std:.2f} {claim.metric} points over {n} "
            f"paired runs (95% interval {low:+.2f} to {high:+.2f}); {claim.better} ahead "
            f"in {wins} of {n}."
        )
    return lines


def _claims_by_axis(spec, runs: list[dict[str, Any]]) -> list[str]:
    """A table: one row per claim, one column per value of the axis, each cell the mean
    paired difference at that value alone and its verdict."""
    values = sorted({run["axis"] for run in runs}, key=float)
    labels = [f"{float(value) * spec.axis.scale:g}" for value in values]
    return _claims_table(spec, runs, "axis", values, labels)


def _claims_by_variant(spec, runs: list[dict[str, Any]]) -> list[str]:
    """The same table with one column per variant (a spec with more than one)."""
    names = [variant.name for variant in spec.variants]
    return _claims_table(spec, runs, "variant", names, names)


def _claims_table(
    spec, runs: list[dict[str, Any]], key: str, values: list[str], labels: list[str]
) -> list[str]:
    """One row per claim, one column per ``run[key]`` value: the mean paired difference of
    the runs with that value alone, its verdict and the number of pairs."""
    lines = ["| " + " | ".join(["claim", *labels]) + " |", "|" + "---|" * (len(labels) + 1)]
    for claim in spec.claims:
        cells = []
        for value in values:
            alone = [run for run in runs if run[key] == value]
            differences = _paired_differences(alone, claim.better, claim.worse, claim.metric)
            if not differences:
                cells.append("–")
                continue
            verdict, _, _ = paired_verdict(differences)
            cells.append(f"{statistics.fmean(differences):+.2f} ({verdict}, {len(differences)})")
        if any(cell != "–" for cell in cells):
            name = f"{claim.better} − {claim.worse}, {claim.metric}"
            lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines if len(lines) > 2 else []


def _format(row: dict[str, Any], metric: str) -> str:
    if metric not in row:
        return ""
    return f"{row[metric]:.2f} ± {row[metric + '_std']:.2f}"


def _plot(spec, rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(row["variant"] for row in rows))
    metrics = spec.axis.plot_metrics or spec.metrics
    figure, axes = plt.subplots(
        len(metrics),
        len(variants),
        figsize=(_PANEL_INCHES[0] * len(variants), _PANEL_INCHES[1] * len(metrics)),
        squeeze=False,
    )
    scale = spec.axis.scale
    for column, variant in enumerate(variants):
        for line, metric in enumerate(metrics):
            ax = axes[line][column]
            for method in dict.fromkeys(row["method"] for row in rows):
                points = sorted(
                    (float(row["axis"]) * scale, row[metric], row[f"{metric}_std"])
                    for row in rows
                    if row["variant"] == variant and row["method"] == method and metric in row
                )
                if points:
                    xs, ys, errors = zip(*points, strict=True)
                    ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=method)
            ax.set_xlabel(spec.axis.label or spec.axis.key)
            ax.set_ylabel(metric)
            ax.set_title(variant or spec.name, fontsize=10)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    title_width = int(_TITLE_CHARACTERS_PER_INCH * _PANEL_INCHES[0] * len(variants))
    figure.suptitle(textwrap.fill(spec.title, title_width), fontsize=10)
    figure.tight_layout()
    atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=110))
    plt.close(figure)


def _stale_runs(spec, runs: list[dict[str, Any]], rates: dict[str, Any]) -> list[str]:
    """``"method (n of m runs)"`` for each method with runs not trained at its rate now."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for run in runs:
        counts[run["method"]][1] += 1
        counts[run["method"]][0] += not trained_at(run, spec, rates)
    return [f"{name} ({n} of {total} runs)" for name, (n, total) in counts.items() if n]


def _extend_words(extend: int) -> str:
    if not extend:
        return ""
    return f", grown past an edge that held the best score by up to {extend} steps"


def _grid_edges(spec, rates: dict[str, float]) -> list[str]:
    """Methods whose tuned learning rate is the smallest or largest factor of the grid."""
    scores = rates.get("_scores")
    if not isinstance(scores, dict):
        return []
    edges = []
    for name, candidates in scores.items():
        grid = sorted(lr for _, lr in candidates)
        if len(grid) > 1 and rates.get(name) in (grid[0], grid[-1]):
            side = "smallest" if rates[name] == grid[0] else "largest"
            edges.append(f"{name} ({side})")
    return edges


def _provenance_lines(runs: list[dict[str, Any]], record: dict[str, Any] | None) -> list[str]:
    if record is None:
        return []
    lines = ["", "## Provenance", "", *provenance_markdown(record)]
    commits = sorted({run.get("commit") or "not recorded" for run in runs})
    devices = sorted({run.get("device") or "not recorded" for run in runs})
    lines.append(f"- runs from commit(s): {', '.join(f'`{c}`' for c in commits)}")
    lines.append(f"- runs on: {'; '.join(devices)}")
    return lines


def write_report(
    spec,
    runs_path: Path,
    out: Path,
    suffix: str,
    seeds: int,
    rates: dict[str, float],
    record: dict[str, Any] | None = None,
) -> Path:
    """Write ``<name>.csv``, ``<name>.md`` (and ``<name>.png`` for a swept axis).

    ``record``: the :func:`~rmlc.provenance.provenance` of this report, written with the
    commits and devices the runs recorded.
    """
    runs = read_runs(runs_path)
    rows = aggregate(runs, spec.metrics)
    extra = [m for m in ("s_in", "s_out") if any(m in row for row in rows)]
    columns = [*spec.metrics, *extra]
    _write_csv(spec, rows, columns, out / f"{spec.name}{suffix}.csv")
    lines = _preamble_lines(spec, runs, suffix, seeds, rates)
    lines += _table_lines(spec, rows, columns)
    lines += _claims_section(spec, runs)
    if spec.axis is not None:
        figure = out / f"{spec.name}{suffix}.png"
        _plot(spec, rows, figure)
        lines += ["", f"![{spec.name}]({figure.name})"]
    budgets = (spec.quick_budgets if suffix else None) or spec.budgets
    if budgets:
        lines += budget_lines(spec, runs, budgets)
        figure = out / f"{spec.name}{suffix}-curves.png"
        plot_curves(spec, runs, figure)
        lines += ["", f"![{spec.name} curves]({figure.name})"]
    if spec.notes:
        lines += ["", "## Deviations from the paper's protocol", "", spec.notes.strip()]
    lines += _provenance_lines(runs, record)
    report = out / f"{spec.name}{suffix}.md"
    atomic_write_text("\n".join(lines) + "\n", report)
    return report


def _write_csv(spec, rows: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """Write the aggregated rows to ``path`` as CSV: each metric's mean and standard
    deviation, and the paper's values beside them."""
    stream = io.StringIO()
    names = ["variant", "axis", "method", "n", "seconds"]
    names += [name for metric in columns for name in (metric, f"{metric}_std")]
    names += [f"paper_{metric}" for metric in spec.metrics]
    writer = csv.DictWriter(stream, fieldnames=names, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        paper = spec.paper.get(row["method"], {})
        writer.writerow({**row, **{f"paper_{k}": v for k, v in paper.items()}})
    atomic_write_text(stream.getvalue(), path)


def _preamble_lines(
    spec, runs: list[dict[str, Any]], suffix: str, seeds: int, rates: dict[str, float]
) -> list[str]:
    """The report's title, command, seeds and learning rates, with warnings of runs not yet
    trained at their rate and of rates at the edge of the searched grid."""
    command = f"rmlc reproduce {spec.name}" + (" --quick" if suffix else "")
    lines = [
        f"# {spec.title}",
        "",
        f"Command: `{command}` ({seeds} seed{'s' if seeds > 1 else ''}: 0..{seeds - 1}); "
        f"config: `src/rmlc/experiments/specs/{spec.name}.yaml`. Mean ± standard deviation over "
        f"seeds; wall time per run on this machine.",
        "",
        "Learning rates: "
        + ", ".join(f"{name} {rate:g}" for name, rate in rates.items() if not name.startswith("_"))
        + (
            f" (chosen on the validation split of `{spec.tune_from}`)"
            if spec.tune_from
            else " (each the best of the rates searched for it on a validation split, seed 0: "
            f"`{spec.name}-tuning.json`; the spec's grid is its default x {spec.tune['factors']}"
            + _extend_words(spec.tune.get("extend", 0))
            + ")"
            if spec.tune and not suffix
            else " (defaults)"
        )
        + ".",
        "",
    ]
    stale = _stale_runs(spec, runs, rates)
    if stale:
        lines[-1:-1] = [
            "Not yet trained at the rate named here (runs from before rates were recorded, or "
            f"at a rate a grown search has replaced): {', '.join(stale)}; `{command}` trains "
            "them again.",
            "",
        ]
    edges = _grid_edges(spec, rates)
    if edges:
        lines[-1:-1] = [
            f"At the edge of the learning-rate grid: {', '.join(edges)}: a wider grid may "
            "change that method's result.",
            "",
        ]
    return lines


def _table_lines(spec, rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """The results as a Markdown table: a row per method (and variant, and axis value)."""
    axis_label = (spec.axis.label or spec.axis.key) if spec.axis else None
    header = ["method"] + (["variant"] if len(spec.variants) > 1 else [])
    header += [axis_label] if axis_label else []
    with_paper = [m for m in spec.metrics if any(m in values for values in spec.paper.values())]
    header += columns + [f"paper {metric}" for metric in with_paper] + ["s / run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        paper = spec.paper.get(row["method"], {})
        cells = [row["method"]] + ([row["variant"]] if len(spec.variants) > 1 else [])
        if axis_label:
            cells.append(f"{float(row['axis']) * spec.axis.scale:g}")
        cells += [_format(row, metric) for metric in columns]
        cells += [f"{paper[metric]:g}" if metric in paper else "–" for metric in with_paper]
        cells.append(f"{row['seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _claims_section(spec, runs: list[dict[str, Any]]) -> list[str]:
    """The paper's claims tested, overall and at each value of a swept axis (none: [])."""
    lines: list[str] = []
    claims = _claim_lines(spec, runs)
    if claims:
        lines += ["", "## Claims", "", *claims]
    by_axis = _claims_by_axis(spec, runs) if spec.axis is not None else []
    if by_axis:
        lines += [
            "",
            f"By {spec.axis.label}: the mean paired difference at each value alone, its "
            "verdict and the number of pairs (every variant and seed at that value).",
            "",
            *by_axis,
        ]
    by_variant = _claims_by_variant(spec, runs) if len(spec.variants) > 1 else []
    if by_variant:
        lines += [
            "",
            "By variant: the mean paired difference in each variant alone, its verdict and "
            "the number of pairs (the claims above pool every variant).",
            "",
            *by_variant,
        ]
    return lines
