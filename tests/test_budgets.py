"""Budgets read off one run's curve (rmlc.experiments.budgets): the selection rule, the last
epoch, the spec's checks, and that a prefix of a constant-rate run is the shorter run."""

from __future__ import annotations

import pytest

from rmlc.experiments.budgets import budget_metrics, curve
from rmlc.experiments.spec import ExperimentSpec
from rmlc.train import TrainConfig, build_trainer


def _series(validation: list[float], test: list[float]) -> dict[str, list[float]]:
    return {
        "epoch": list(range(1, len(test) + 1)),
        "val_mAP": validation,
        "test_mAP": test,
        "test_F1-C": [value / 2 for value in test],
        "fit_corrupted_mAP": [10.0 * (i + 1) for i in range(len(test))],
    }


def test_each_budget_picks_the_first_best_validation_epoch_within_it() -> None:
    series = _series(validation=[10, 30, 30, 20, 40], test=[50, 60, 70, 80, 55])
    metrics = budget_metrics(series, [1, 3, 4, 5])
    assert metrics["mAP@1"] == 50 and metrics["epoch@1"] == 1
    # epochs 2 and 3 tie on validation: the earlier one is kept (the trainer keeps a new
    # best only when strictly better)
    assert metrics["epoch@3"] == 2 and metrics["mAP@3"] == 60 and metrics["last_mAP@3"] == 70
    assert metrics["epoch@4"] == 2 and metrics["last_mAP@4"] == 80
    assert metrics["epoch@5"] == 5 and metrics["mAP@5"] == 55
    assert metrics["F1-C@5"] == 27.5 and metrics["last_F1-C@4"] == 40
    assert metrics["fit_corrupted@4"] == 40


def test_a_budget_beyond_the_run_or_a_run_without_curves_is_refused() -> None:
    series = _series(validation=[1, 2], test=[3, 4])
    with pytest.raises(ValueError, match="budget 3 is outside the run's 2 epochs"):
        budget_metrics(series, [3])
    del series["test_mAP"]
    with pytest.raises(ValueError, match="no test_mAP curve: budgets need test_every_epoch"):
        budget_metrics(series, [1])


def _spec(**changes) -> dict:
    values = {
        "name": "b",
        "title": "t",
        "metrics": ["mAP@2"],
        "seeds": 1,
        "base": {"epochs": 2, "schedule": "fixed", "test_every_epoch": True},
        "methods": [{"name": "WARP", "set": {"loss": "warp"}}],
        "budgets": [1, 2],
    }
    values.update(changes)
    return values


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budgets": [1, 3]}, "epochs must be the largest budget"),
        ({"budgets": [0, 2]}, "positive epoch counts"),
        ({"base": {"epochs": 2, "schedule": "cosine", "test_every_epoch": True}}, "fixed"),
        ({"base": {"epochs": 2, "schedule": "fixed"}}, "test_every_epoch"),
        ({"methods": [{"name": "R", "set": {"loss": "rmlc", "ramp_start": 0.5}}]}, "hinge_steps"),
        ({"methods": [{"name": "R", "set": {"loss": "rmlc", "ramp_start": 0.3}}]}, "hinge_steps"),
        ({"quick_variants": ["nope"]}, "quick_variants names 'nope'"),
        ({"quick_methods": ["nope"]}, "quick_methods names 'nope'"),
    ],
)
def test_a_budget_spec_that_is_not_a_prefix_of_one_run_is_refused(changes, message) -> None:
    with pytest.raises(TypeError, match=message):
        ExperimentSpec.from_dict(_spec(**changes))


def test_budget_specs_accept_warm_starts_in_steps_and_no_ramp_or_ramp_from_the_start() -> None:
    methods = [
        {"name": "R", "set": {"loss": "rmlc", "loss_params": {"hinge_steps": 7}}},
        {"name": "R1", "set": {"loss": "rmlc", "ramp_start": 1}},
        {"name": "default", "set": {"loss": "rmlc"}},  # ramp_start 1 by default
        {"name": "R0", "set": {"loss": "rmlc", "ramp_start": 0}},
        {"name": "P", "set": {"loss": "rmlc-paper"}},
    ]
    assert len(ExperimentSpec.from_dict(_spec(methods=methods)).trained) == 5


def _history(epochs: int, out, curve_every: int = 1) -> list[dict]:
    config = TrainConfig(
        curve_every=curve_every,
        subsample=0.1,
        width=4,
        epochs=epochs,
        schedule="fixed",
        loss="rmlc",
        loss_params={"hinge_steps": 5},
        label_noise=0.3,
        test_every_epoch=True,
        dynamics_every=1000,
        tensorboard=False,
        progress=False,
        out=str(out / f"budget-{epochs}-{curve_every}"),
    )
    trainer = build_trainer(config)
    trainer.fit()
    return trainer.history


@pytest.mark.slow
def test_the_first_epochs_of_a_constant_rate_run_are_the_shorter_run(tmp_path) -> None:
    long, short = curve(_history(3, tmp_path)), curve(_history(2, tmp_path))
    for key in ("test_mAP", "val_mAP", "fit_corrupted_mAP", "fit_clean_mAP"):
        assert long[key][:2] == short[key], key
    assert budget_metrics(long, [2]) == budget_metrics(short, [2])
    # A thinned curve (curve_every 3) trains the same network: the same validation curve,
    # and the test split and training fit evaluated at the first epoch, the last, and each
    # epoch validation selects (strictly better than every earlier one), NaN between.
    thinned = curve(_history(3, tmp_path, curve_every=3))
    assert thinned["val_mAP"] == long["val_mAP"]
    validation = thinned["val_mAP"]
    due = [i in (0, 2) or validation[i] > max(validation[:i]) for i in range(3)]
    assert not all(due), "the check needs an epoch the thinned curve skips"
    for key in ("test_mAP", "fit_corrupted_mAP", "fit_clean_mAP"):
        expected = [v if d else None for v, d in zip(long[key], due, strict=True)]
        assert thinned[key] == expected, key
    skipped = due.index(False) + 1
    assert budget_metrics(thinned, [3]) == budget_metrics(long, [3])
    with pytest.raises(ValueError, match=f"no value at epoch {skipped}: with curve_every"):
        budget_metrics(thinned, [skipped])


def test_curves_read_skipped_epochs_as_none_and_budgets_refuse_them() -> None:
    nan = float("nan")
    history = [
        {"epoch": 1, "val_mAP": 5.0, "test_mAP": 50.0},
        {"epoch": 2, "val_mAP": 4.0, "test_mAP": nan},
        {"epoch": 3, "val_mAP": 6.0, "test_mAP": 60.0},
    ]
    series = curve(history)
    assert series["test_mAP"] == [50.0, None, 60.0]
    assert budget_metrics(series, [3])["mAP@3"] == 60.0
    with pytest.raises(ValueError, match="test_mAP curve has no value at epoch 2"):
        budget_metrics(series, [2])


def test_a_budget_that_is_not_a_multiple_of_curve_every_is_refused() -> None:
    base = {"epochs": 10, "schedule": "fixed", "test_every_epoch": True, "curve_every": 5}
    # the first and the last epoch are always evaluated
    assert ExperimentSpec.from_dict(_spec(base=base, budgets=[1, 5, 10])).budgets == [1, 5, 10]
    with pytest.raises(TypeError, match=r"budgets \[4\] .* curve_every 5 skips"):
        ExperimentSpec.from_dict(_spec(base=base, budgets=[4, 10]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": [{"name": "W", "set": {"loss": "warp", "curve_every": 3}}]},
         r"\[5\] of '', 'W'"),
        ({"variants": [{"name": "v", "set": {"curve_every": 3}}]}, r"budgets \[5\] of 'v'"),
        ({"quick": {"epochs": 3}, "quick_budgets": [1, 2, 3]}, r"quick budgets \[2\]"),
        ({"base": {"epochs": 10, "schedule": "fixed", "test_every_epoch": True, "curve_every": 0}},
         "curve_every must be a positive integer, got 0"),
    ],
)  # fmt: skip
def test_curve_every_of_a_variant_a_method_or_quick_is_checked_too(changes, message) -> None:
    base = {"epochs": 10, "schedule": "fixed", "test_every_epoch": True, "curve_every": 5}
    with pytest.raises(TypeError, match=message):
        ExperimentSpec.from_dict(_spec(**{"base": base, "budgets": [5, 10], **changes}))


def test_curve_every_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="curve_every must be >= 1, got 0"):
        TrainConfig(curve_every=0)


def test_the_figure_averages_seeds_only_at_epochs_every_seed_evaluated() -> None:
    from rmlc.experiments.budget_report import _mean_curve

    assert _mean_curve([[1.0, None, 3.0, 7.0], [3.0, 4.0, 5.0]]) == ([1, 3], [2.0, 4.0])
    # thinned to every 2: epoch 3 (picked by validation in both seeds) is off the grid
    thinned = [[1.0, 2.0, 9.0, 4.0, None, 6.0], [3.0, 4.0, 9.0, 6.0, 7.0, 8.0]]
    assert _mean_curve(thinned, every=2) == ([1, 2, 4, 6], [2.0, 3.0, 5.0, 7.0])


def test_log_csv_rows_follow_the_header_whatever_the_order_of_a_record(tmp_path) -> None:
    import csv

    from rmlc.train.run_log import RunLog

    log = RunLog(tmp_path, tensorboard=False, echo=False, enabled=True)
    log.epoch({"epoch": 1, "fit_train_mAP": 11.0, "val_mAP": 22.0})  # written before 2d0bd39
    log.epoch({"epoch": 2, "val_mAP": 22.5, "fit_train_mAP": 11.5})  # resumed after it
    with (tmp_path / "log.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert rows[1] == {"epoch": "2", "fit_train_mAP": "11.5", "val_mAP": "22.5"}
