"""rmlc.checks: the constraints declared once, against literal comparisons, and the
estimator's scikit-learn constraints read from them."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pytest
from sklearn.utils._param_validation import Interval as SklearnInterval

from rmlc.checks import (
    KAPPA,
    LEARNING_RATE,
    MOMENTUM,
    RAMP_S,
    TEMPERATURE,
    Interval,
    Options,
    ParameterError,
    check,
)

VALUES = [-2, -1, -1.0, -0.5, 0, 0.0, 0.5, 1, 1.0, 3, 2.5, math.inf, math.nan, True, "1", None]


def literal(value, kind, low, high, closed) -> bool:
    """The interval's membership spelled out."""
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    if kind is numbers.Real and (value != value or value in (math.inf, -math.inf)):
        return False
    above = low is None or (value >= low if closed in ("left", "both") else value > low)
    below = high is None or (value <= high if closed in ("right", "both") else value < high)
    return above and below


@pytest.mark.parametrize("closed", ["left", "right", "both", "neither"])
@pytest.mark.parametrize("kind", [numbers.Real, numbers.Integral])
@pytest.mark.parametrize(("low", "high"), [(0, 1), (-1, 0), (0, None), (None, 1)])
def test_intervals_hold_what_the_literal_comparisons_hold(closed, kind, low, high) -> None:
    interval = Interval(kind, low, high, closed)
    for value in VALUES:
        assert interval.accepts(value) == literal(value, kind, low, high, closed), value


def test_conditions_are_worded_as_the_messages_were() -> None:
    assert LEARNING_RATE.condition == "be > 0"
    assert MOMENTUM.condition == "lie in [0, 1)"
    assert RAMP_S.condition == "lie in (-1, 0]"
    assert KAPPA.condition == "lie in [0, inf)"
    assert Options(("a", "b")).condition == "be one of 'a', 'b'"
    with pytest.raises(ParameterError, match=r"^s must lie in \(-1, 0\]; got 0.5$"):
        check(0.5, RAMP_S, "s")
    assert check(-0.5, RAMP_S, "s") == -0.5


@pytest.mark.parametrize(
    ("t", "ok"),
    [
        ("mean", True),
        ("authors", True),
        ("median", False),
        (0.5, True),
        (2, True),
        (0.0, False),
        (-1.0, False),
        (math.inf, False),
        (True, False),
        (None, False),
    ],
)
def test_the_temperature_is_a_name_or_a_positive_finite_number(t, ok) -> None:
    assert TEMPERATURE.accepts(t) == ok


def test_the_estimator_reads_the_shared_declarations() -> None:
    """RMLClassifier's scikit-learn constraints are the declarations of rmlc.checks, and
    the same as the ones it declared itself before."""
    from rmlc.linear import RMLClassifier

    constraints = RMLClassifier._parameter_constraints
    before = {
        "alpha": SklearnInterval(numbers.Real, 0, math.inf, closed="left"),
        "kappa": SklearnInterval(numbers.Real, 0, math.inf, closed="left"),
        "s": SklearnInterval(numbers.Real, -1, 0, closed="right"),
        "learning_rate": SklearnInterval(numbers.Real, 0, math.inf, closed="neither"),
        "momentum": SklearnInterval(numbers.Real, 0, 1, closed="left"),
        "max_epochs": SklearnInterval(numbers.Integral, 1, None, closed="left"),
        "batch_size": SklearnInterval(numbers.Integral, 1, None, closed="left"),
        "random_state": SklearnInterval(numbers.Integral, 0, None, closed="left"),
    }
    for name, expected in before.items():
        got = constraints[name][0]
        assert (got.type, got.left, got.right, got.closed) == (
            expected.type,
            expected.left,
            expected.right,
            expected.closed,
        ), name
    assert constraints["random_state"][1:] == [np.random.Generator, None]
