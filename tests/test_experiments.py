"""rmlc reproduce --quick: every experiment runs end to end and writes its files."""

from __future__ import annotations

import csv

import pytest

from rmlc.experiments import EXPERIMENTS, load_spec, reproduce
from rmlc.experiments.report import aggregate


@pytest.mark.slow
def test_reproduce_all_quick(tmp_path) -> None:
    reports = reproduce("all", quick=True, out=tmp_path)
    assert [report.name for report in reports] == [f"{name}-quick.md" for name in EXPERIMENTS]
    for name in EXPERIMENTS:
        spec = load_spec(name)
        text = (tmp_path / f"{name}-quick.md").read_text()
        assert spec.title in text and f"rmlc reproduce {name} --quick" in text
        assert "Deviations from the paper's protocol" in text
        with (tmp_path / f"{name}-quick.csv").open() as stream:
            rows = list(csv.DictReader(stream))
        methods = {method["name"] for method in spec.methods}
        assert {row["method"] for row in rows} == methods
        for row in rows:
            for metric in spec.metrics:
                if row.get(metric):
                    assert 0.0 <= float(row[metric]) <= 100.0
        if spec.axis is not None:
            assert (tmp_path / f"{name}-quick.png").stat().st_size > 10_000
    table2 = (tmp_path / "table2-quick.csv").read_text()
    assert "s_in" in table2 and "s_out" in table2
    # An interrupted or repeated reproduction resumes: finished runs are not run again.
    runs_file = tmp_path / "table3-quick-runs.csv"
    before = runs_file.read_text()
    reproduce("table3", quick=True, out=tmp_path)
    assert runs_file.read_text() == before


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
