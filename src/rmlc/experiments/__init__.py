"""Re-testing the paper's tables and figures on the data this machine reaches.

Each experiment is a YAML file in ``configs/reproduce/``: a base training config, methods,
optional variants (data subsets) and an optional axis (a swept parameter such as the label
noise), the paper's numbers, the claims to check and the deviations from the paper's
protocol. :func:`reproduce` runs every (variant, axis value, seed, method), appending each
finished run to ``results/<name>-runs.csv`` (an interrupted reproduction resumes where it
stopped), then writes ``results/<name>.csv``, ``results/<name>.md`` and, for swept axes,
``results/<name>.png``.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from rmlc.experiments.report import write_report
from rmlc.experiments.runner import fit_on_features, train_network
from rmlc.train import TrainConfig

__all__ = ["EXPERIMENTS", "ExperimentSpec", "load_spec", "reproduce"]

EXPERIMENTS = ("table1", "table2", "table3", "table4", "fig3", "missing")
SPEC_FOLDER = Path(__file__).resolve().parents[3] / "configs" / "reproduce"


@dataclass
class ExperimentSpec:
    """What one experiment runs (see ``configs/reproduce/*.yaml``)."""

    name: str
    title: str
    metrics: list[str]
    seeds: int
    base: dict[str, Any]
    methods: list[dict[str, Any]]
    quick: dict[str, Any] = field(default_factory=dict)
    quick_seeds: int = 1
    variants: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "", "set": {}}])
    axis: dict[str, Any] | None = None
    quick_axis: list[float] | None = None
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    tune: dict[str, Any] | None = None
    tune_from: str | None = None
    notes: str = ""
    path: Path | None = None


def load_spec(name: str, folder: Path | None = None) -> ExperimentSpec:
    path = (folder or SPEC_FOLDER) / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"experiment spec not found: {path}")
    values = yaml.safe_load(path.read_text())
    try:
        spec = ExperimentSpec(**values, path=path)
    except TypeError as error:
        raise ValueError(f"{path}: {error}") from None
    TrainConfig.from_dict(dict(spec.base), source=f"{path} (base)")  # validate early
    return spec


def _runs_done(path: Path) -> dict[tuple, dict[str, Any]]:
    if not path.is_file():
        return {}
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    return {(row["variant"], row["axis"], int(row["seed"]), row["method"]): row for row in rows}


def _plan(spec: ExperimentSpec, quick: bool, seeds: int) -> list[tuple]:
    axis_values = [None]
    if spec.axis is not None:
        axis_values = list(spec.quick_axis if quick and spec.quick_axis else spec.axis["values"])
    return [
        (variant, value, seed, method)
        for variant in spec.variants
        for value in axis_values
        for seed in range(seeds)
        for method in spec.methods
    ]


def _config_values(spec: ExperimentSpec, quick: bool, variant: dict, value, method: dict) -> dict:
    """base < variant < axis value < method < quick (``--quick`` shrinks everything)."""
    values = {**spec.base, **variant.get("set", {})}
    if value is not None:
        values[spec.axis["key"]] = value
    values.update(method.get("set", {}))
    if quick:
        values.update(spec.quick)
    return values


def _selection_metric(result_metrics: dict[str, Any]) -> float:
    validation = result_metrics.get("validation", {})
    return validation.get("accuracy", validation.get("mAP", float("nan")))


def tuned_learning_rates(spec: ExperimentSpec, out: Path, quick: bool) -> dict[str, float]:
    """Each method's learning rate: its default times the factor of ``spec.tune`` with the
    best validation score (seed 0, first variant, first axis value), every method with the
    same factors; or the rates another experiment chose (``tune_from``); or the defaults
    (``--quick``)."""
    from rmlc.train.config import DEFAULT_LEARNING_RATES

    def default(method: dict) -> float:
        values = _config_values(spec, quick, spec.variants[0], None, method)
        return values.get("lr") or DEFAULT_LEARNING_RATES[values.get("loss", "rmlc")]

    trained = [m for m in spec.methods if m.get("kind") != "features"]
    if quick or (spec.tune is None and spec.tune_from is None):
        return {m["name"]: default(m) for m in trained}
    if spec.tune_from is not None:
        chosen = json.loads((out / f"{spec.tune_from}-tuning.json").read_text())
        return {m["name"]: chosen[m.get("tune_as", m["name"])] for m in trained}
    path = out / f"{spec.name}-tuning.json"
    if path.is_file():
        return json.loads(path.read_text())
    first_value = spec.axis["values"][0] if spec.axis else None
    chosen: dict[str, float] = {}
    tuned = [m for m in trained if "tune_as" not in m]
    plan = [(m, f) for m in tuned for f in spec.tune["factors"]]
    scores: dict[str, list[tuple[float, float]]] = {}
    for method, factor in tqdm(plan, desc=f"{spec.name} tuning", unit="run"):
        values = _config_values(spec, quick, spec.variants[0], first_value, method)
        values.update(seed=0, lr=default(method) * factor)
        run = train_network(TrainConfig.from_dict(values, source=str(spec.path)))
        scores.setdefault(method["name"], []).append((_selection_metric(run.result), values["lr"]))
    for name, candidates in scores.items():
        chosen[name] = max(candidates)[1]
    for method in trained:
        if "tune_as" in method:
            chosen[method["name"]] = chosen[method["tune_as"]]
    path.write_text(json.dumps({**chosen, "_scores": scores}, indent=2))
    return chosen


def run_experiment(
    spec: ExperimentSpec, quick: bool = False, seeds: int | None = None, out: Path = Path("results")
) -> Path:
    """Run (or resume) one experiment and write its results; returns the report's path."""
    seeds = seeds or (spec.quick_seeds if quick else spec.seeds)
    suffix = "-quick" if quick else ""
    out.mkdir(parents=True, exist_ok=True)
    rates = tuned_learning_rates(spec, out, quick)
    runs_path = out / f"{spec.name}{suffix}-runs.csv"
    done = _runs_done(runs_path)
    plan = _plan(spec, quick, seeds)
    trained: dict[tuple, Any] = {}
    fields = ["variant", "axis", "seed", "method", "seconds", "metrics"]
    new_file = not runs_path.is_file()
    with runs_path.open("a", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        if new_file:
            writer.writeheader()
        bar = tqdm(plan, desc=spec.name, unit="run")
        for variant, value, seed, method in bar:
            key = (variant["name"], "" if value is None else str(value), seed, method["name"])
            needed_later = any(
                m.get("source") == method["name"] and (key[0], key[1], seed, m["name"]) not in done
                for m in spec.methods
            )
            if key in done and not needed_later:
                continue
            bar.set_postfix_str(f"{variant['name'] or 'all'} {value} seed {seed} {method['name']}")
            started = time.perf_counter()
            if method.get("kind") == "features":
                source = trained[(key[0], key[1], seed, method["source"])]
                metrics, _ = fit_on_features(source, method.get("params", {}), seed)
            else:
                values = _config_values(spec, quick, variant, value, method)
                values.update(seed=seed, lr=rates[method["name"]])
                run = train_network(TrainConfig.from_dict(values, source=str(spec.path)))
                metrics = run.metrics
                if needed_later:
                    trained[(key[0], key[1], seed, method["name"])] = run
                if key in done:
                    continue
            writer.writerow(
                {
                    "variant": key[0],
                    "axis": key[1],
                    "seed": seed,
                    "method": key[3],
                    "seconds": f"{time.perf_counter() - started:.1f}",
                    "metrics": json.dumps(metrics),
                }
            )
            stream.flush()
    return write_report(spec, runs_path, out, suffix, seeds, rates)


def reproduce(
    target: str, quick: bool = False, seeds: int | None = None, out: Path = Path("results")
) -> list[Path]:
    """Run one experiment by name, or ``"all"`` of them; returns the report paths."""
    names = EXPERIMENTS if target == "all" else (target,)
    for name in names:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; choose {', '.join(EXPERIMENTS)}")
    return [run_experiment(load_spec(name), quick, seeds, Path(out)) for name in names]
