"""Checks of parameters, shared by every module, with one wording: the parameter's name,
what it must be, and the value found.

A failed check raises :class:`ParameterError`, which is both a ``ValueError`` and a
``TypeError`` (as scikit-learn's ``InvalidParameterError``): a wrong type and a value out
of range are the same mistake to the caller.

The constraints of the parameters that several entry points share are declared once
here, in scikit-learn's style (:class:`Interval`, :class:`Options`, :class:`AnyOf`): the
learning rate, momentum, weight decay, epochs, batch size and seed of
:class:`~rmlc.train.TrainConfig` and :class:`~rmlc.linear.RMLClassifier` (which turns them
into scikit-learn's own ``_parameter_constraints``), the ramp's ``s``, ``beta`` and
``kappa`` of the losses and the estimator, ``ramp_start`` of the config and the loss
registry, and label propagation's temperature ``t``. Loss names are the loss registry's
(:data:`rmlc.losses.LOSS_REGISTRY`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, TypeVar

__all__ = [
    "BATCH_SIZE",
    "EPOCHS",
    "KAPPA",
    "LEARNING_RATE",
    "MOMENTUM",
    "RAMP_BETA",
    "RAMP_S",
    "RAMP_START",
    "SEED",
    "TEMPERATURE",
    "WEIGHT_DECAY",
    "AnyOf",
    "Interval",
    "Options",
    "ParameterError",
    "check",
    "check_choice",
    "check_fraction",
    "check_integer",
    "check_seed",
]

T = TypeVar("T")


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type or outside its range; the message names it."""


def check_choice(value: T, choices: Collection[object], name: str) -> T:
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(map(repr, choices))
        raise ParameterError(f"{name} must be one of {listed}; got {value!r}")
    return value


def check_integer(value: object, name: str, minimum: int = 0, *, allow_none: bool = False):
    """``value`` as a Python int (numpy integers accepted, booleans refused) when it is at
    least ``minimum``; None passes through when ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        also = " or None" if allow_none else ""
        raise ParameterError(f"{name} must be an integer >= {minimum}{also}; got {value!r}")
    return int(value)


def check_seed(value: object, name: str = "seed") -> int:
    """A seed: an integer >= 0."""
    return check_integer(value, name, 0)


def check_fraction(value: object, name: str, *, open_low: bool = False) -> float:
    """``value`` as a float when it lies in ``[0, 1]`` (``(0, 1]`` with ``open_low``)."""
    interval = "(0, 1]" if open_low else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a number in {interval}; got {value!r}")
    number = float(value)
    low_ok = number > 0 if open_low else number >= 0
    if not (math.isfinite(number) and low_ok and number <= 1):
        raise ParameterError(f"{name} must lie in {interval}, got {value!r}")
    return number


# ---- declared constraints -------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``numbers.Real`` or ``numbers.Integral``; never booleans) between
    ``low`` and ``high`` (None: unbounded; ``Real`` numbers must be finite), ``closed`` at
    ``"left"``, ``"right"``, ``"both"`` or ``"neither"`` end (scikit-learn's ``Interval``)."""

    kind: type
    low: float | None
    high: float | None
    closed: Literal["left", "right", "both", "neither"] = "both"

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if self.kind is numbers.Real and not math.isfinite(float(value)):  # type: ignore[arg-type]
            return False
        low_ok = self.low is None or (
            value >= self.low if self.closed in ("left", "both") else value > self.low  # type: ignore[operator]
        )
        high_ok = self.high is None or (
            value <= self.high if self.closed in ("right", "both") else value < self.high  # type: ignore[operator]
        )
        return low_ok and high_ok

    @property
    def condition(self) -> str:
        """``"be > 0"``, ``"be >= 1"`` or ``"lie in [0, 1)"``."""
        if self.high is None and self.low is not None:
            return f"be {'>=' if self.closed in ('left', 'both') else '>'} {self.low:g}"
        if self.low is None and self.high is not None:
            return f"be {'<=' if self.closed in ('right', 'both') else '<'} {self.high:g}"
        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        return f"lie in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True)
class Options:
    """One of ``values`` (scikit-learn's ``StrOptions`` for strings)."""

    values: tuple[object, ...]

    def accepts(self, value: object) -> bool:
        return isinstance(value, str | int | float | type(None)) and value in self.values

    @property
    def condition(self) -> str:
        return f"be one of {', '.join(map(repr, self.values))}"


@dataclass(frozen=True)
class AnyOf:
    """Any of ``constraints``; ``condition`` says what they allow together."""

    constraints: tuple[Interval | Options, ...]
    condition: str

    def accepts(self, value: object) -> bool:
        return any(constraint.accepts(value) for constraint in self.constraints)


Constraint = Interval | Options | AnyOf


def check(value: T, constraint: Constraint, name: str) -> T:
    """``value`` when ``constraint`` accepts it, else a :class:`ParameterError` naming it:
    ``"{name} must {condition}; got {value!r}"``."""
    if not constraint.accepts(value):
        raise ParameterError(f"{name} must {constraint.condition}; got {value!r}")
    return value


# The parameters several entry points share, each declared once.
LEARNING_RATE = Interval(numbers.Real, 0, None, "neither")  # lr, learning_rate, default_lr
MOMENTUM = Interval(numbers.Real, 0, 1, "left")
WEIGHT_DECAY = Interval(numbers.Real, 0, None, "left")  # weight_decay; the estimator's alpha
EPOCHS = Interval(numbers.Integral, 1, None, "left")  # epochs; the estimator's max_epochs
BATCH_SIZE = Interval(numbers.Integral, 1, None, "left")
SEED = Interval(numbers.Integral, 0, None, "left")  # seed; the estimator's random_state
RAMP_S = Interval(numbers.Real, -1, 0, "right")  # the ramp's s (losses, estimator)
RAMP_BETA = Interval(numbers.Real, 0, 1, "both")  # the ramp's beta (ramp_beta)
KAPPA = Interval(numbers.Real, 0, math.inf, "left")  # the margin term's weight
RAMP_START = Interval(numbers.Real, 0, 1, "both")  # the hinge's share of a run
TEMPERATURE = AnyOf(  # label propagation's heat-kernel t
    (Options(("mean", "authors")), Interval(numbers.Real, 0, None, "neither")),
    "be 'mean', 'authors' or a positive finite number",
)
