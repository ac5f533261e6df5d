"""Running an experiment: the learning-rate search, the runs (in worker processes with
``jobs`` > 1), the runs file and the report.

:func:`reproduce` runs every (variant, axis value, seed, method) of a spec, appending each
finished run to ``results/<name>-runs.csv`` (an interrupted reproduction resumes where it
stopped), then writes ``results/<name>.csv``, ``results/<name>.md`` and, for swept axes,
``results/<name>.png``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rmlc.atomic import atomic_write_text
from rmlc.experiments.budgets import budget_metrics, curve
from rmlc.experiments.report import write_report
from rmlc.experiments.runner import fit_on_features, train_network
from rmlc.experiments.runs import appending, run_rate, runs_done
from rmlc.experiments.spec import EXPERIMENTS, ExperimentSpec, Method, RunKey, Variant, load_spec
from rmlc.provenance import describe_device, git_commit, provenance
from rmlc.train import TrainConfig

__all__ = ["reproduce", "run_experiment", "tuned_learning_rates"]


def _plan(spec: ExperimentSpec, quick: bool, seeds: int) -> list[tuple]:
    """Every ``(variant, axis value or None, seed, method)`` to run."""
    axis_values: list[float | None] = [None]
    if spec.axis is not None:
        axis_values = list(spec.quick_axis if quick and spec.quick_axis else spec.axis.values)
    variants = spec.variants
    if quick and spec.quick_variants:
        variants = [v for v in variants if v.name in spec.quick_variants]
    methods = spec.methods
    if quick and spec.quick_methods:  # a check of the pipeline, not of every method
        methods = [m for m in methods if m.name in spec.quick_methods]
    return [
        (variant, value, seed, method)
        for variant in variants
        for value in axis_values
        for seed in range(seeds)
        for method in methods
    ]


def _config_values(
    spec: ExperimentSpec, quick: bool, variant: Variant, value: float | None, method: Method
) -> dict[str, Any]:
    """base < variant < axis value < method < quick (``--quick`` shrinks everything)."""
    values = {**spec.base, **variant.set}
    if value is not None and spec.axis is not None:
        values[spec.axis.key] = value
    values.update(method.set)
    if quick:
        values.update(spec.quick)
    return values


def _budgets(spec: ExperimentSpec, quick: bool) -> list[int] | None:
    """The budgets read off each run (``--quick``: the quick ones)."""
    return spec.quick_budgets if quick and spec.quick_budgets else spec.budgets


def _selection_metric(result_metrics: dict[str, Any]) -> float:
    validation = result_metrics.get("validation", {})
    return validation.get("accuracy", validation.get("mAP", float("nan")))


def _train_task(task: dict[str, Any]) -> dict[str, Any]:
    """One trained network of an experiment, and the fixed-feature methods that read its
    features (run in a worker process when ``jobs > 1``).

    Returns:
        ``{"result": the trainer's result, "metrics": {method name: (metrics, seconds)}}``.
    """
    started = time.perf_counter()
    try:
        run = train_network(TrainConfig.from_dict(task["values"], source=task["source"]))
    except FloatingPointError:  # a learning rate of the search that diverges scores last
        if not task.get("tuning"):
            raise
        return {"result": {"validation": {"mAP": -math.inf, "accuracy": -math.inf}}}
    if task.get("budgets"):  # every shorter budget, read off the run's curve
        series = curve(run.trainer.history)
        run.metrics.update(budget_metrics(series, task["budgets"]), curve=series)
    metrics = {task["name"]: (run.metrics, time.perf_counter() - started)}
    for feature_method in task["features"]:
        values, seconds = fit_on_features(run, feature_method.params, task["values"]["seed"])
        metrics[feature_method.name] = (values, seconds)
    return {"result": run.result, "metrics": metrics}


def _task(
    spec: ExperimentSpec,
    method: Method,
    values: dict[str, Any],
    features: list[Method] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What :func:`_train_task` runs: one method's config, and the fixed-feature methods to
    fit on its network (``extra``: ``key`` of a run, ``tuning`` for a search's runs)."""
    return {
        "name": method.name,
        "values": values,
        "source": str(spec.path),
        "features": features or [],
        **extra,
    }


def _worker_start(threads: int, parent: int) -> None:
    """Set up a pool worker of the reproduction whose process id is ``parent`` (passed in,
    not read here: a worker started as its parent dies would read the id of its new one)."""
    import torch

    torch.set_num_threads(threads)
    # A worker whose reproduction is gone (killed, or stopped by a signal the worker handled
    # as a graceful stop of its own run) must not go on training runs nobody will record.
    threading.Thread(
        target=_exit_when_orphaned, args=(parent,), daemon=True, name="parent-watch"
    ).start()


def _exit_when_orphaned(
    parent: int,
    getppid: Callable[[], int] = os.getppid,
    exit_now: Callable[[int], object] = os._exit,
    wait: Callable[[float], object] = time.sleep,
) -> None:
    """Return only by ending the process, once its parent ``parent`` has gone."""
    while getppid() == parent:
        wait(1.0)
    exit_now(1)


def _map(tasks: list[dict[str, Any]], jobs: int, description: str):
    """Yield ``(task, outcome)`` as each task finishes: in this process when ``jobs`` is 1,
    else in ``jobs`` worker processes sharing the machine's cores."""
    bar = tqdm(total=len(tasks), desc=description, unit="run")
    if jobs <= 1:
        for task in tasks:
            yield task, _train_task(task)
            bar.update()
        bar.close()
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, context, _worker_start, (threads, os.getpid())) as pool:
        futures = {pool.submit(_train_task, task): task for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()
            bar.update()
    bar.close()


def tuned_learning_rates(
    spec: ExperimentSpec, out: Path, quick: bool, jobs: int = 1, only: set[str] | None = None
) -> dict[str, float]:
    """Each method's learning rate: its default times the factor of ``spec.tune`` with the
    best validation score (seed 0, first variant, first axis value), every method with the
    same factors, and with ``extend`` > 0 the same rule past the grid (:func:`_grown_grid`);
    or the rates another experiment chose (``tune_from``; its search is run or completed
    first where it lacks a method this one takes); or the defaults (``--quick``). ``only``:
    search only these methods (and those they are tuned as)."""
    from rmlc.train.config import DEFAULT_LEARNING_RATES

    def default(method: Method) -> float:
        values = _config_values(spec, quick, spec.variants[0], None, method)
        return values.get("lr") or DEFAULT_LEARNING_RATES[values.get("loss", "rmlc")]

    trained = spec.trained
    if quick or (spec.tune is None and spec.tune_from is None):
        return {m.name: default(m) for m in trained}
    if spec.tune_from is not None:  # that experiment's search, completed first if need be
        needed = {m.tune_as or m.name for m in trained}
        chosen = tuned_learning_rates(load_spec(spec.tune_from), out, quick, jobs, needed)
        return _rates_by_method(spec, chosen)
    path = out / f"{spec.name}-tuning.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    first_value = spec.axis.values[0] if spec.axis else None
    searched = [m for m in trained if m.tune_as is None]
    factors, extend = spec.tune["factors"], spec.tune.get("extend", 0)
    base = {m.name: [default(m) * factor for factor in factors] for m in searched}
    scored = {
        m.name: [tuple(pair) for pair in previous.get("_scores", {}).get(m.name, [])]
        for m in searched
    }
    if only is not None:  # the methods another experiment takes, and those they are tuned as
        only = only | {m.tune_as for m in trained if m.name in only and m.tune_as is not None}
    while True:  # rounds: the grid, then each step past an edge that holds the best score
        grid = {name: _grown_grid(base[name], scored[name], extend) for name in base}
        scores = {name: _on_grid(scored[name], grid[name]) for name in grid}
        tasks = []  # only the (method, rate) pairs not scored yet: a grid can grow
        for method in searched:
            if only is not None and method.name not in only:
                continue  # its scores so far are kept; its search waits for its own experiment
            for lr in grid[method.name]:
                if _on_grid(scores[method.name], [lr]):
                    continue
                values = _config_values(spec, quick, spec.variants[0], first_value, method)
                values.update(seed=0, lr=lr, test_every_epoch=False)  # validation chooses
                tasks.append(_task(spec, method, values, tuning=True))
        if not tasks:
            break
        for task, outcome in _map(tasks, jobs, f"{spec.name} tuning"):
            pair = (_selection_metric(outcome["result"]), task["values"]["lr"])
            scored[task["name"]].append(pair)
            scores[task["name"]].append(pair)
            # saved after every run: a search stopped half-way resumes from the runs it scored
            _save_search(_choices(trained, scores, grid), path, previous)
    chosen = _choices(trained, scores, grid)
    _save_search(chosen, path, previous)
    return chosen


def _on_grid(scored: list[tuple[float, float]], grid: list[float]) -> list[tuple[float, float]]:
    """The (score, rate) pairs whose rate is on the grid."""
    return [
        (score, lr)
        for score, lr in scored
        if any(math.isclose(lr, wanted, rel_tol=1e-9) for wanted in grid)
    ]


def _grown_grid(grid: list[float], scored: list[tuple[float, float]], extend: int) -> list[float]:
    """The rates to score: ``grid`` (increasing), and once every rate on it is scored, one
    more past the edge that holds the best score (the edge's own ratio: 0.1, 0.3 grows
    0.033), until the best lies inside or ``extend`` steps were added on that side."""
    grown = list(grid)
    added = {"low": 0, "high": 0}
    while True:
        found = [_on_grid(scored, [lr]) for lr in grown]
        if not all(found) or len(grown) < 2:
            return grown
        best = max(range(len(grown)), key=lambda i: (max(found[i])[0], grown[i]))
        if best == 0 and added["low"] < extend:
            grown.insert(0, grown[0] * grown[0] / grown[1])
            added["low"] += 1
        elif best == len(grown) - 1 and added["high"] < extend:
            grown.append(grown[-1] * grown[-1] / grown[-2])
            added["high"] += 1
        else:
            return grown


def _choices(
    trained: list[Method],
    scores: dict[str, list[tuple[float, float]]],
    grid: dict[str, list[float]],
) -> dict[str, Any]:
    """The best rate of each method whose grid is fully scored (and of the methods tuned as
    it), with every score so far under ``_scores``."""
    chosen: dict[str, Any] = {
        name: max(candidates)[1]
        for name, candidates in scores.items()
        if len(candidates) >= len(grid[name])
    }
    for method in trained:
        if method.tune_as is not None and method.tune_as in chosen:
            chosen[method.name] = chosen[method.tune_as]
    chosen["_scores"] = {name: sorted(c, key=lambda pair: pair[1]) for name, c in scores.items()}
    return chosen


def _save_search(chosen: dict[str, Any], path: Path, previous: dict[str, Any]) -> None:
    if json.loads(json.dumps(chosen)) != previous:  # the report names choices at the grid's edge
        atomic_write_text(json.dumps(chosen, indent=2), path)


def _searched_rates(spec: ExperimentSpec, out: Path, quick: bool) -> dict[str, Any]:
    """The learning rates a report names, from the searches as they stand: nothing is
    trained (a method that no search has covered yet is left out)."""
    if quick or (spec.tune is None and spec.tune_from is None):
        return tuned_learning_rates(spec, out, quick=True)  # the defaults
    chosen = json.loads((out / f"{spec.tune_from or spec.name}-tuning.json").read_text())
    if spec.tune_from is None:
        return chosen
    return _rates_by_method(spec, chosen, partial=True)


def _rates_by_method(
    spec: ExperimentSpec, chosen: dict[str, Any], partial: bool = False
) -> dict[str, Any]:
    """Each trained method's rate from another experiment's search (``tune_as`` names the
    entry it takes); ``partial`` leaves out the methods the search lacks."""
    sources = {m.name: m.tune_as or m.name for m in spec.trained}
    return {
        name: chosen[source] for name, source in sources.items() if not partial or source in chosen
    }


def run_experiment(
    spec: ExperimentSpec,
    quick: bool = False,
    seeds: int | None = None,
    out: Path = Path("results"),
    jobs: int = 1,
    report_only: bool = False,
) -> Path:
    """Run (or resume) one experiment and write its results; returns the report's path.

    ``jobs`` > 1 trains that many networks at once in worker processes, each with an
    equal share of the cores (every run is seeded; thread counts may change the last bits
    of floating-point sums). ``report_only`` rewrites the report from the runs file and the
    learning-rate search already there, training nothing.
    """
    seeds = seeds or (spec.quick_seeds if quick else spec.seeds)
    suffix = "-quick" if quick else ""
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / f"{spec.name}{suffix}-runs.csv"
    command = f"rmlc reproduce {spec.name}" + (" --quick" if quick else "")
    if report_only:  # the report again, from the runs and searches already done
        if not runs_path.is_file():
            raise FileNotFoundError(f"no runs to report: {runs_path} does not exist")
        tuning = out / f"{(spec.tune_from or spec.name)}-tuning.json"
        if not quick and (spec.tune or spec.tune_from) and not tuning.is_file():
            raise FileNotFoundError(f"no learning-rate search to report: {tuning} is missing")
        rates = _searched_rates(spec, out, quick)
        record = provenance(command + " --report-only")
        return write_report(spec, runs_path, out, suffix, seeds, rates, record)
    rates = tuned_learning_rates(spec, out, quick, jobs)
    done = runs_done(runs_path, spec, rates)
    tasks = []
    for variant, value, seed, method in _plan(spec, quick, seeds):
        if not method.trains_a_network:
            continue
        key = RunKey(variant.name, "" if value is None else str(value), seed, method.name)
        features = [
            m
            for m in spec.methods
            if m.source == method.name and key._replace(method=m.name) not in done
        ]
        if key in done and not features:
            continue
        values = _config_values(spec, quick, variant, value, method)
        values.update(seed=seed, lr=rates[method.name])
        tasks.append(_task(spec, method, values, features, key=key, budgets=_budgets(spec, quick)))
    origin = {"commit": git_commit(), "device": describe_device()}
    with appending(runs_path) as record:
        for task, outcome in _map(tasks, jobs, spec.name):
            for name, (metrics, seconds) in outcome["metrics"].items():
                key = task["key"]._replace(method=name)
                if key not in done:
                    record(
                        key,
                        lr=repr(run_rate(spec, name, rates)),
                        seconds=f"{seconds:.1f}",
                        metrics=json.dumps(metrics),
                        **origin,
                    )
    return write_report(spec, runs_path, out, suffix, seeds, rates, provenance(command))


def reproduce(
    target: str,
    quick: bool = False,
    seeds: int | None = None,
    out: Path = Path("results"),
    jobs: int = 1,
    report_only: bool = False,
) -> list[Path]:
    """Run one experiment by name, or ``"all"`` of them; returns the report paths."""
    names = EXPERIMENTS if target == "all" else (target,)
    for name in names:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; choose {', '.join(EXPERIMENTS)}")
    return [
        run_experiment(load_spec(name), quick, seeds, Path(out), jobs, report_only)
        for name in names
    ]
