"""rmlc reproduce --quick: every experiment runs end to end and writes its files."""

from __future__ import annotations

import csv
import json
import math

import pytest

from rmlc.experiments import EXPERIMENTS, load_spec, reproduce
from rmlc.experiments.report import aggregate

# table3 runs in worker processes (test_parallel_jobs_run_every_method_once); the others here
QUICK_IN_PROCESS = tuple(name for name in EXPERIMENTS if name != "table3")


# The share of the 4,000 embedded training mosaics and the test mosaics a quick run here
# trains on and is scored on (100 training mosaics, 90 of them trained on, 200 test ones).
MOSAIC_FRACTION = 0.025
TEST_MOSAICS = 200


@pytest.fixture
def smaller_mosaic_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick runs on 100 of the 4,000 embedded training mosaics and 200 of the 1,000 test
    ones: a report's files, rows and sections do not depend on the data's size, and four
    experiments (table3, table4 and their pretrained forms) would otherwise train every
    method on all of them (fig3's and missing's quick runs use a tenth). The subsample is
    part of the configs, built in this process, so it reaches the worker processes of
    ``jobs=2`` too; the smaller test split reaches the runs in this process only."""
    from rmlc.experiments import reproduction
    from rmlc.train.sources import fashion_mosaic

    original = reproduction._config_values

    def smaller(spec, quick, variant, value, method) -> dict:
        values = original(spec, quick, variant, value, method)
        if quick and values.get("dataset") == "fashion-mosaic":
            values["subsample"] = min(values.get("subsample") or 1.0, MOSAIC_FRACTION)
        return values

    arrays = fashion_mosaic._arrays

    def fewer_test_mosaics(split: str, source: str):
        images, targets = arrays(split, source)
        return (
            (images[:TEST_MOSAICS], targets[:TEST_MOSAICS])
            if split == "test"
            else (images, targets)
        )

    monkeypatch.setattr(reproduction, "_config_values", smaller)
    monkeypatch.setattr(fashion_mosaic, "_arrays", fewer_test_mosaics)


def assert_quick_files(name: str, out) -> None:
    """The report, table and (for a swept axis) figure of ``rmlc reproduce NAME --quick``."""
    spec = load_spec(name)
    text = (out / f"{name}-quick.md").read_text()
    assert spec.title in text and f"rmlc reproduce {name} --quick" in text
    assert "Deviations from the paper's protocol" in text
    with (out / f"{name}-quick.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    methods = set(spec.quick_methods or [method.name for method in spec.methods])
    assert {row["method"] for row in rows} == methods  # a quick run trains its quick methods
    for row in rows:
        for metric in spec.metrics:
            if row.get(metric):
                assert 0.0 <= float(row[metric]) <= 100.0
    if spec.axis is not None:
        assert (out / f"{name}-quick.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("name", QUICK_IN_PROCESS)
def test_reproduce_quick(name: str, tmp_path, smaller_mosaic_sets) -> None:
    """Each experiment end to end, one test each so that xdist shares them out."""
    (report,) = reproduce(name, quick=True, out=tmp_path)
    assert report == tmp_path / f"{name}-quick.md"
    assert_quick_files(name, tmp_path)
    if name == "table2":
        table2 = (tmp_path / "table2-quick.csv").read_text()
        assert "s_in" in table2 and "s_out" in table2


def test_reproduce_all_runs_every_experiment_in_order(tmp_path, monkeypatch) -> None:
    """``reproduce("all")`` runs each experiment once, in EXPERIMENTS' order, with the
    caller's settings (each experiment's own run: test_reproduce_quick)."""
    from rmlc.experiments import reproduction

    calls = []

    def record(spec, quick, seeds, out, jobs, report_only):
        calls.append((spec.name, quick, seeds, out, jobs, report_only))
        return out / f"{spec.name}-quick.md"

    monkeypatch.setattr(reproduction, "run_experiment", record)
    reports = reproduce("all", quick=True, out=tmp_path, jobs=3)
    assert [report.name for report in reports] == [f"{name}-quick.md" for name in EXPERIMENTS]
    assert calls == [(name, True, None, tmp_path, 3, False) for name in EXPERIMENTS]


def test_aggregate_means_and_spreads() -> None:
    runs = [
        {
            "variant": "",
            "axis": "0.1",
            "method": "A",
            "seed": s,
            "seconds": 1.0,
            "metrics": {"mAP": value},
        }
        for s, value in enumerate([10.0, 20.0, 30.0])
    ]
    (row,) = aggregate(runs, ["mAP"])
    assert row["mAP"] == pytest.approx(20.0) and row["mAP_std"] == pytest.approx(10.0)
    assert row["n"] == 3


def test_unknown_experiment() -> None:
    with pytest.raises(ValueError, match="unknown experiment 'table9'"):
        reproduce("table9", quick=True)


@pytest.mark.parametrize(
    ("differences", "verdict"),
    [
        ([2.0, 2.5, 3.0], "held"),
        ([-2.0, -2.5, -3.0], "did not hold"),
        ([5.0, -1.0, 0.5], "inconclusive"),  # mean > 0, ahead in 2 of 3, interval holds 0
        ([4.0], "inconclusive"),
    ],
)
def test_paired_verdicts_use_the_interval(differences, verdict) -> None:
    from rmlc.experiments.report import paired_verdict

    got, low, high = paired_verdict(differences)
    assert got == verdict
    assert low <= sum(differences) / len(differences) <= high


def test_paired_interval_is_students_t() -> None:
    from scipy import stats

    from rmlc.experiments.report import paired_verdict

    differences = [1.0, 2.0, 4.0, 3.0]
    _, low, high = paired_verdict(differences)
    mean, sem = 2.5, stats.sem(differences)
    half = stats.t.ppf(0.975, 3) * sem
    assert (low, high) == pytest.approx((mean - half, mean + half))


def test_report_flags_learning_rates_at_the_grid_edge(tmp_path) -> None:
    from rmlc.experiments.report import write_report
    from rmlc.provenance import provenance

    spec = load_spec("table3")
    runs = tmp_path / "runs.csv"
    with runs.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, ["variant", "axis", "seed", "method", "seconds", "metrics"])
        writer.writeheader()
        for seed in range(2):
            writer.writerow(
                {
                    "variant": "",
                    "axis": "",
                    "seed": seed,
                    "method": "WARP",
                    "seconds": 1,
                    "metrics": '{"mAP": 50.0}',
                }
            )
    rates = {
        "WARP": 0.02,
        "RMLC": 0.002,
        "_scores": {"WARP": [[1, 0.002], [2, 0.02]], "RMLC": [[1, 0.0002], [3, 0.002], [2, 0.02]]},
    }
    report = write_report(spec, runs, tmp_path, "", 2, rates, provenance("rmlc reproduce x"))
    text = report.read_text()
    assert "At the edge of the learning-rate grid: WARP (largest)" in text
    assert "RMLC (" not in text.split("At the edge")[1].split("\n")[0]
    assert "## Provenance" in text and "- command: `rmlc reproduce x`" in text
    assert "runs from commit(s): `not recorded`" in text


@pytest.mark.slow
def test_parallel_jobs_run_every_method_once(tmp_path, smaller_mosaic_sets) -> None:
    """``jobs=2`` trains in worker processes; the fixed-feature method runs beside its
    source network, and each run records its commit and device. The quick files are
    those of a run in one process; a repeated reproduction trains nothing again."""
    (report,) = reproduce("table3", quick=True, out=tmp_path, jobs=2)
    assert report == tmp_path / "table3-quick.md"
    assert_quick_files("table3", tmp_path)
    with (tmp_path / "table3-quick-runs.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    spec = load_spec("table3")
    assert sorted(row["method"] for row in rows) == sorted(m.name for m in spec.methods)
    assert all(row["commit"] and row["device"].startswith("cpu") for row in rows)
    assert "## Provenance" in (tmp_path / "table3-quick.md").read_text()
    # An interrupted or repeated reproduction resumes: finished runs are not run again.
    before = (tmp_path / "table3-quick-runs.csv").read_text()
    reproduce("table3", quick=True, out=tmp_path)
    assert (tmp_path / "table3-quick-runs.csv").read_text() == before
    # --report-only rewrites the report from those runs, training nothing
    (tmp_path / "table3-quick.md").unlink()
    reproduce("table3", quick=True, out=tmp_path, report_only=True)
    assert (tmp_path / "table3-quick-runs.csv").read_text() == before
    assert "--report-only" in (tmp_path / "table3-quick.md").read_text()


def test_report_only_without_runs_names_the_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="table3-quick-runs.csv does not exist"):
        reproduce("table3", quick=True, out=tmp_path, report_only=True)


def test_a_diverging_learning_rate_of_the_search_scores_last(monkeypatch) -> None:
    from rmlc.experiments import reproduction as experiments

    def diverge(config):
        raise FloatingPointError("loss became nan")

    monkeypatch.setattr(experiments, "train_network", diverge)
    task = {"name": "WARP", "values": {}, "source": "spec", "seed": 0, "features": []}
    outcome = experiments._train_task({**task, "tuning": True})
    assert experiments._selection_metric(outcome["result"]) == float("-inf")
    with pytest.raises(FloatingPointError):  # outside the search a divergence is an error
        experiments._train_task(task)


def _search_spec(factors: list[float], methods: list[dict], **tune):
    """A one-variant spec whose search is ``{"factors": factors, **tune}``."""
    from rmlc.experiments import ExperimentSpec

    return ExperimentSpec.from_dict(
        {
            "name": "search",
            "title": "search",
            "metrics": ["mAP"],
            "seeds": 1,
            "base": {"dataset": "fashion-mosaic"},
            "methods": methods,
            "tune": {"factors": factors, **tune},
        }
    )


def test_the_learning_rate_search_runs_only_what_it_has_not_scored(tmp_path, monkeypatch) -> None:
    """A grown grid or a new method searches only the new (method, rate) pairs; a rate no
    longer on the grid is neither chosen nor kept."""
    from rmlc.experiments import reproduction as experiments

    trained: list[tuple[str, float]] = []

    def fake_map(tasks, jobs, description):
        for task in tasks:
            lr = task["values"]["lr"]
            trained.append((task["name"], lr))
            # validation peaks at lr = 0.02 for WARP (default 0.002) and 0.006 for RMLC
            best = {"WARP": 0.02, "RMLC": 0.006}[task["name"]]
            yield task, {"result": {"validation": {"mAP": -abs(math.log(lr / best))}}}

    monkeypatch.setattr(experiments, "_map", fake_map)
    warp = {"name": "WARP", "set": {"loss": "warp"}}
    rmlc = {"name": "RMLC", "set": {"loss": "rmlc"}}
    ss = {"name": "SS-RMLC", "tune_as": "RMLC", "set": {"loss": "rmlc"}}

    rates = experiments.tuned_learning_rates(_search_spec([0.3, 1.0, 3.0], [warp]), tmp_path, False)
    assert [lr for _, lr in trained] == pytest.approx([0.0006, 0.002, 0.006])
    assert rates["WARP"] == 0.006  # at the grid's edge

    trained.clear()
    spec = _search_spec([1.0, 3.0, 10.0], [warp, rmlc, ss])
    rates = experiments.tuned_learning_rates(spec, tmp_path, False)
    assert [name for name, _ in sorted(trained)] == ["RMLC", "RMLC", "RMLC", "WARP"]
    assert [lr for _, lr in sorted(trained)] == pytest.approx([0.006, 0.018, 0.06, 0.02])
    assert rates["WARP"] == pytest.approx(0.02) and rates["RMLC"] == 0.006
    assert rates["SS-RMLC"] == rates["RMLC"]
    saved = json.loads((tmp_path / "search-tuning.json").read_text())
    assert [lr for _, lr in saved["_scores"]["WARP"]] == pytest.approx([0.002, 0.006, 0.02])

    trained.clear()  # everything scored: nothing runs again
    assert experiments.tuned_learning_rates(spec, tmp_path, False) == rates
    assert trained == []


def test_the_search_grows_past_an_edge_that_holds_the_best_score(tmp_path, monkeypatch) -> None:
    """``extend``: once a method's grid is scored, a step past the edge with the best score,
    the edge's own ratio, until the best lies inside or ``extend`` steps were taken; every
    method by the same rule, a method with the best inside grows nothing."""
    from rmlc.experiments import reproduction as experiments
    from rmlc.experiments.report import _grid_edges

    rounds: list[list[tuple[str, float]]] = []
    peaks = {"WARP": 0.0003, "BCE": 0.15, "RMLC": 0.1}  # below, inside, above their grids

    def fake_map(tasks, jobs, description):
        rounds.append([(task["name"], task["values"]["lr"]) for task in tasks])
        for task in tasks:
            lr = task["values"]["lr"]
            yield (
                task,
                {"result": {"validation": {"mAP": -abs(math.log(lr / peaks[task["name"]]))}}},
            )

    monkeypatch.setattr(experiments, "_map", fake_map)
    methods = [{"name": name, "set": {"loss": name.lower()}} for name in peaks]
    # the defaults: warp 0.002, bce 0.05, rmlc 0.006
    spec = _search_spec([1.0, 3.0, 10.0], methods, extend=2)
    rates = experiments.tuned_learning_rates(spec, tmp_path, False)
    assert len(rounds[0]) == 9  # the whole grid first, every method at once
    assert rounds[1] == [("WARP", pytest.approx(0.002 / 3)), ("RMLC", pytest.approx(0.2))]
    assert rounds[2] == [("WARP", pytest.approx(0.002 / 9))]  # better again: one more step
    assert len(rounds) == 3  # RMLC's 0.2 was worse than 0.06: its best lies inside
    assert rates["WARP"] == pytest.approx(0.002 / 9)  # the most steps taken, still the edge
    assert rates["BCE"] == pytest.approx(0.15) and rates["RMLC"] == pytest.approx(0.06)
    saved = json.loads((tmp_path / "search-tuning.json").read_text())
    assert [len(saved["_scores"][name]) for name in peaks] == [5, 3, 4]
    assert _grid_edges(spec, saved) == ["WARP (smallest)"]
    rounds.clear()  # a second call scores nothing again
    assert experiments.tuned_learning_rates(spec, tmp_path, False) == rates and rounds == []
    rounds.clear()  # without extend the grown rates are off the grid: neither chosen nor kept
    spec.tune["extend"] = 0
    assert experiments.tuned_learning_rates(spec, tmp_path, False)["WARP"] == pytest.approx(0.002)
    assert rounds == []


@pytest.mark.parametrize(
    "tune, problem",
    [
        ({"factors": []}, "increasing numbers > 0"),
        ({"factors": [1.0, 0.3]}, "increasing numbers > 0"),
        ({"factors": [0.0, 1.0]}, "increasing numbers > 0"),
        ({"factors": [1.0, 3.0], "extend": -1}, "extend must be a whole number"),
        ({"factors": [1.0, 3.0], "extend": 1.5}, "extend must be a whole number"),
        ({"factors": [1.0, 3.0], "steps": 2}, "tune takes factors and extend"),
    ],
)
def test_a_spec_with_a_bad_search_is_refused(tune, problem) -> None:
    with pytest.raises(TypeError, match=problem):
        _search_spec(methods=[{"name": "WARP", "set": {"loss": "warp"}}], **tune)


def test_a_spec_tuned_from_another_searches_only_the_methods_it_takes(
    tmp_path, monkeypatch
) -> None:
    """``tune_from``: the other experiment's search is completed for the methods this one
    takes, and the scores it has of its other methods are kept."""
    from rmlc.experiments import ExperimentSpec
    from rmlc.experiments import reproduction as experiments

    trained: list[str] = []

    def fake_map(tasks, jobs, description):
        for task in tasks:
            trained.append(task["name"])
            yield task, {"result": {"validation": {"mAP": task["values"]["lr"]}}}

    monkeypatch.setattr(experiments, "_map", fake_map)
    source = _search_spec(
        [1.0, 3.0],
        [{"name": "WARP", "set": {"loss": "warp"}}, {"name": "BCE", "set": {"loss": "bce"}}],
    )
    (tmp_path / "search-tuning.json").write_text(
        json.dumps({"_scores": {"BCE": [[50.0, 0.05]]}})  # half of BCE's grid scored
    )
    monkeypatch.setattr(experiments, "load_spec", lambda name: source)
    dependent = ExperimentSpec.from_dict(
        {
            "name": "dependent",
            "title": "dependent",
            "metrics": ["mAP"],
            "seeds": 1,
            "base": {"dataset": "fashion-mosaic"},
            "methods": [{"name": "WARP", "set": {"loss": "warp"}}],
            "tune_from": "search",
        }
    )
    rates = experiments.tuned_learning_rates(dependent, tmp_path, False)
    assert trained == ["WARP", "WARP"] and rates == {"WARP": pytest.approx(0.006)}
    saved = json.loads((tmp_path / "search-tuning.json").read_text())
    assert saved["_scores"]["BCE"] == [[50.0, 0.05]] and "BCE" not in saved


def test_a_search_stopped_half_way_resumes_from_the_runs_it_scored(tmp_path, monkeypatch):
    from rmlc.experiments import reproduction as experiments

    trained: list[float] = []

    def stopping_map(tasks, jobs, description):
        for task in tasks:
            if len(trained) == 2:
                raise KeyboardInterrupt  # stopped after two runs
            trained.append(task["values"]["lr"])
            yield task, {"result": {"validation": {"mAP": task["values"]["lr"]}}}

    monkeypatch.setattr(experiments, "_map", stopping_map)
    spec = _search_spec([0.3, 1.0, 3.0], [{"name": "WARP", "set": {"loss": "warp"}}])
    with pytest.raises(KeyboardInterrupt):
        experiments.tuned_learning_rates(spec, tmp_path, False)
    saved = json.loads((tmp_path / "search-tuning.json").read_text())
    assert "WARP" not in saved  # not chosen from half a grid
    assert [lr for _, lr in saved["_scores"]["WARP"]] == pytest.approx([0.0006, 0.002])
    trained.clear()
    rates = experiments.tuned_learning_rates(spec, tmp_path, False)
    assert trained == pytest.approx([0.006])  # only the rate not scored yet
    assert rates["WARP"] == pytest.approx(0.006)


def test_a_runs_file_without_rate_and_provenance_columns_gains_them(tmp_path) -> None:
    from rmlc.experiments.runs import RUN_FIELDS, prepare_runs_file

    path = tmp_path / "old-runs.csv"
    path.write_text('variant,axis,seed,method,seconds,metrics\n,,0,WARP,1.5,"{""mAP"": 50.0}"\n')
    prepare_runs_file(path)
    with path.open() as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
    assert reader.fieldnames == RUN_FIELDS
    assert rows == [
        {
            "variant": "",
            "axis": "",
            "seed": "0",
            "method": "WARP",
            "lr": "",
            "seconds": "1.5",
            "metrics": '{"mAP": 50.0}',
            "commit": "",
            "device": "",
        }
    ]


def test_runs_train_again_when_their_learning_rate_is_not_the_one_chosen_now(
    tmp_path, monkeypatch
) -> None:
    """A run counts as done only at its method's current rate: a row from before rates were
    recorded, or at a rate a grown search replaced, trains again (with the fixed-feature
    method that reads its network), the new row supersedes the old in the report, and
    --report-only names the runs still at another rate."""
    from rmlc.experiments import reproduction as experiments
    from rmlc.experiments.runs import RUN_FIELDS
    from rmlc.train.config import DEFAULT_LEARNING_RATES

    methods = [
        {"name": "WARP", "set": {"loss": "warp"}},
        {"name": "BCE", "set": {"loss": "bce"}},
        {"name": "RMLC", "set": {"loss": "rmlc"}},
        {"name": "CNN+RMLC", "kind": "features", "source": "BCE", "params": {}},
    ]
    spec = _search_spec([1.0], methods)
    search = {m["name"]: DEFAULT_LEARNING_RATES[m["set"]["loss"]] for m in methods[:3]}
    search["_scores"] = {name: [[50.0, rate]] for name, rate in search.items()}
    (tmp_path / "search-tuning.json").write_text(json.dumps(search))
    runs = tmp_path / "search-runs.csv"
    old = {"variant": "", "axis": "", "seed": 0, "seconds": 1, "commit": "c", "device": "cpu"}
    recorded = [
        ("WARP", search["WARP"] / 10),
        ("BCE", search["BCE"]),
        ("CNN+RMLC", ""),
        ("RMLC", ""),
    ]
    with runs.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, RUN_FIELDS)
        writer.writeheader()
        for method, lr in recorded:
            metrics = json.dumps({"mAP": 10.0})
            writer.writerow(
                old | {"method": method, "lr": repr(lr) if lr else "", "metrics": metrics}
            )
    report = experiments.run_experiment(spec, out=tmp_path, report_only=True)
    assert "WARP (1 of 1 runs), CNN+RMLC (1 of 1 runs), RMLC (1 of 1 runs)" in report.read_text()

    trained: list[tuple[str, float, list[str]]] = []

    def fake_map(tasks, jobs, description):
        for task in tasks:
            trained.append((task["name"], task["values"]["lr"], [m.name for m in task["features"]]))
            names = [task["name"], *(m.name for m in task["features"])]
            yield task, {"metrics": {name: ({"mAP": 70.0}, 1.0) for name in names}}

    monkeypatch.setattr(experiments, "_map", fake_map)
    report = experiments.run_experiment(spec, out=tmp_path)
    assert sorted(trained) == [
        ("BCE", search["BCE"], ["CNN+RMLC"]),
        ("RMLC", search["RMLC"], []),
        ("WARP", search["WARP"], []),
    ]
    with runs.open() as stream:
        rows = list(csv.DictReader(stream))
    new = {row["method"]: row["lr"] for row in rows[4:]}
    expected = {"WARP": search["WARP"], "CNN+RMLC": search["BCE"], "RMLC": search["RMLC"]}
    assert new == {name: repr(rate) for name, rate in expected.items()}  # BCE's row stays
    text = report.read_text()
    assert "Not yet trained" not in text
    table = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    assert "70.00" in table["WARP"] and "10.00" in table["BCE"] and "70.00" in table["CNN+RMLC"]

    trained.clear()  # everything at its rate now: nothing trains
    experiments.run_experiment(spec, out=tmp_path)
    assert trained == []


def test_a_worker_ends_itself_when_its_reproduction_is_gone() -> None:
    """Pool workers watch their parent: once it is gone (its parent id changes), the worker
    exits instead of training runs that nobody will record."""
    from rmlc.experiments.reproduction import _exit_when_orphaned

    parents = iter([100, 100, 100, 1])  # the parent dies after three checks
    waits, exits = [], []
    _exit_when_orphaned(100, lambda: next(parents), exits.append, waits.append)
    assert exits == [1] and waits == [1.0, 1.0, 1.0]


def test_a_worker_started_as_its_reproduction_dies_still_ends(monkeypatch) -> None:
    """The worker watches the process id its pool passed in, not the parent it finds at
    start-up: one spawned as the reproduction died finds a new parent already."""
    from rmlc.experiments import reproduction as experiments

    parents = iter([1, 1])  # reparented before the watch starts
    exits: list[int] = []

    class Thread:
        def __init__(self, target, args, **kwargs):
            self.run = lambda: target(*args, lambda: next(parents), exits.append)

        def start(self):
            self.run()

    monkeypatch.setattr(experiments.threading, "Thread", Thread)
    monkeypatch.setattr("torch.set_num_threads", lambda threads: None)  # this process's stay
    experiments._worker_start(1, parent=4242)
    assert exits == [1]


def test_report_only_never_trains_even_when_the_search_grew(tmp_path, monkeypatch) -> None:
    """A grid widened in the spec is searched by the next full run, not by --report-only."""
    from rmlc.experiments import reproduction as experiments
    from rmlc.experiments.runs import RUN_FIELDS

    spec = load_spec("table3")
    with (tmp_path / "table3-runs.csv").open("w", newline="") as stream:  # runs to report on
        writer = csv.DictWriter(stream, RUN_FIELDS)
        writer.writeheader()
        for seed in range(2):
            for method in spec.methods:
                metrics = json.dumps({"mAP": 50.0 + seed, "F1-C": 40.0})
                row = {"variant": "", "axis": "", "seed": seed, "method": method.name}
                writer.writerow(row | {"seconds": 1, "metrics": metrics, "commit": "c"})
    scores = {m.name: [[50.0, 0.01]] for m in spec.trained}
    search = {name: 0.01 for name in scores} | {"_scores": scores}
    (tmp_path / "table3-tuning.json").write_text(json.dumps(search))

    def no_training(*args, **kwargs):
        raise AssertionError("--report-only trained a network")

    monkeypatch.setattr(experiments, "_map", no_training)
    report = reproduce("table3", out=tmp_path, report_only=True)[0]
    assert "RMLC 0.01" in report.read_text()


def test_a_spec_is_checked_whole_when_it_is_read(tmp_path) -> None:
    """Typos in a spec are errors naming the spec and the key, not a KeyError mid-run."""
    good = (load_spec("table3").path).read_text()
    cases = {
        "unknown top-level key": (good + "\nseed: 3\n", r"unknown key\(s\) \['seed'\]"),
        "unknown method key": (
            good.replace("{name: WARP, set: {loss: warp}}", "{name: WARP, sett: {loss: warp}}"),
            r"method 'WARP': unknown key\(s\) \['sett'\]",
        ),
        "a feature method reading a feature method": (
            good.replace("source: BCE", "source: CNN+RMLC"),
            "names 'CNN\\+RMLC', not a method here that trains a network",
        ),
        "a claim of a missing method": (
            good.replace(
                "better: RMLC, worse: WARP, metric: mAP",
                "better: RMLC, worse: WRAP, metric: mAP",
                1,
            ),
            "names 'WRAP', not a method here",
        ),
    }
    for name, (text, message) in cases.items():
        (tmp_path / f"{name}.yaml").write_text(text)
        with pytest.raises(ValueError, match=message):
            load_spec(name, folder=tmp_path)
    spec = load_spec("table3")
    assert spec.method("CNN+RMLC").source == "BCE" and not spec.method("CNN+RMLC").trains_a_network


def test_reports_with_an_axis_give_each_claim_at_each_value() -> None:
    """One verdict per value of the axis, from the pairs at that value alone."""
    from rmlc.experiments.report import _claims_by_axis

    spec = load_spec("fig3")
    runs = []
    for axis, gap in (("0.0", 1.0), ("0.5", -1.0)):
        for seed in range(4):
            for method, value in (("RMLC", 50.0 + gap + 0.01 * seed), ("WARP", 50.0)):
                runs.append(
                    {
                        "variant": "v",
                        "axis": axis,
                        "seed": seed,
                        "method": method,
                        "metrics": {"mAP": value},
                    }
                )
    table = _claims_by_axis(spec, runs)
    assert table[0] == "| claim | 0 | 50 |"
    row = next(line for line in table if line.startswith("| RMLC − WARP, mAP"))
    assert "+1.02 (held, 4)" in row and "-0.98 (did not hold, 4)" in row
    assert not any("F1-C" in line for line in table)  # no F1-C in these runs


def test_reports_with_variants_give_each_claim_in_each_variant() -> None:
    """Pooling settings that disagree hides both: one verdict per variant."""
    from rmlc.experiments.report import _claims_section

    spec = load_spec("partial")
    runs = []
    for variant, gap in (("half the tags hidden", 1.0), ("single positive", -30.0)):
        for seed in range(3):
            for method, value in (
                ("RMLC", 50.0 + gap + 0.01 * seed),
                ("RMLC absent=negative", 50.0),
            ):
                runs.append(
                    {"variant": variant, "axis": "", "seed": seed, "method": method,
                     "metrics": {"mAP": value}}
                )  # fmt: skip
    lines = _claims_section(spec, runs)
    assert "| claim | half the tags hidden | single positive |" in lines
    row = next(line for line in lines if line.startswith("| RMLC − RMLC absent=negative, mAP"))
    assert "+1.01 (held, 3)" in row and "-29.99 (did not hold, 3)" in row
